"""The cost of the network model: warm invoke of a VPC Lambda, a DB connect and an API call from a worker.

"with" goes through the connect() hook and the model's decision (a new connection each time; the hook keeps
the model's answer while its generation holds); "without" makes the same connection to the server's own
address, which the hook leaves alone. The warm invoke is measured for the same code with and without
VpcConfig, interleaved, so that what the VPC costs is told apart from what the machine's load costs.
"""
from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

from common import LAMBDA_TRUST, client, control, db_server_port, free_port, percentile, report, scratch_home
from labkit.lambda_platform import runtime as lambda_runtime

SOURCE = '''
import os, socket, statistics, time
import boto3


def timed(fn, n):
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def api(endpoint):
    boto3.client("sts", endpoint_url=endpoint).get_caller_identity()


def lambda_handler(event, context):
    if not event:
        return {"ok": True}
    db, direct = tuple(event["db"]), ("127.0.0.1", event["db_server_port"])
    return {
        "db_with": timed(lambda: socket.create_connection(db, timeout=2).close(), 200),
        "db_without": timed(lambda: socket.create_connection(direct, timeout=2).close(), 200),
        "api_with": timed(lambda: api(os.environ["AWS_ENDPOINT_URL_STS"]), 30),
        "api_without": timed(lambda: api(event["cloud"]), 30),
    }
'''


def main() -> None:
    with scratch_home() as home:
        _bench(home)


def _bench(home: Path) -> None:
    status = control.start_cloud(port=free_port(), home=home)
    try:
        ec2, rds, lam, iam = (client(status, s) for s in ("ec2", "rds", "lambda", "iam"))
        vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.7.{i}.0/24", AvailabilityZone=f"us-east-1{z}")
                   ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
        fn_sg, db_sg = (ec2.create_security_group(GroupName=n, Description=n, VpcId=vpc)["GroupId"] for n in ("f", "d"))
        ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306, "UserIdGroupPairs": [{"GroupId": fn_sg}]}])
        eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.7.9.0/24")["Subnet"]["SubnetId"]
        public_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        ec2.associate_route_table(RouteTableId=public_rt, SubnetId=public)
        nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=eip)["NatGateway"]["NatGatewayId"]
        private_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=private_rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        for subnet in subnets:
            ec2.associate_route_table(RouteTableId=private_rt, SubnetId=subnet)
        client(status, "rds").create_db_subnet_group(DBSubnetGroupName="g", DBSubnetGroupDescription="g",
                                                     SubnetIds=subnets)
        rds.create_db_instance(DBInstanceIdentifier="bench-db", Engine="mariadb", DBInstanceClass="db.t3.micro",
                               MasterUsername="admin", MasterUserPassword="bench-pass-123", AllocatedStorage=20,
                               DBSubnetGroupName="g", VpcSecurityGroupIds=[db_sg])
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier="bench-db", WaiterConfig={"Delay": 1})
        endpoint = rds.describe_db_instances(DBInstanceIdentifier="bench-db")["DBInstances"][0]["Endpoint"]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("lambda_function.py", SOURCE)
        role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
        iam.attach_role_policy(RoleName="bench",
                               PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole")
        lam.create_function(FunctionName="probe", Runtime=lambda_runtime(), Role=role, Timeout=120,
                            Handler="lambda_function.lambda_handler", Code={"ZipFile": buffer.getvalue()},
                            VpcConfig={"SubnetIds": subnets, "SecurityGroupIds": [fn_sg]})
        lam.create_function(FunctionName="plain", Runtime=lambda_runtime(), Role=role, Timeout=120,
                            Handler="lambda_function.lambda_handler", Code={"ZipFile": buffer.getvalue()})
        times: dict[str, list[float]] = {"probe": [], "plain": []}
        for name in times:
            lam.invoke(FunctionName=name)["Payload"].read()
        for _ in range(200):
            for name, series in times.items():
                started = time.perf_counter()
                lam.invoke(FunctionName=name)["Payload"].read()
                series.append((time.perf_counter() - started) * 1000)
        report("warm invoke p50, VPC Lambda (hook loaded)", percentile(times["probe"], 50), "ms", "(target <= 5 ms)")
        report("warm invoke p50, same code without VpcConfig", percentile(times["plain"], 50), "ms")
        event = {"db": [endpoint["Address"], endpoint["Port"]], "cloud": status.endpoint,
                 "db_server_port": db_server_port(home, endpoint["Address"], endpoint["Port"])}
        out = json.loads(lam.invoke(FunctionName="probe", Payload=json.dumps(event).encode())["Payload"].read())
        report("DB TCP connect from a worker, with the model", out["db_with"], "ms", "(median of 200)")
        report("DB TCP connect from a worker, without", out["db_without"], "ms")
        report("API call from a worker (new client), with", out["api_with"], "ms", "(median of 30)")
        report("API call from a worker (new client), without", out["api_without"], "ms")
    finally:
        control.stop_cloud(home)


if __name__ == "__main__":
    main()
