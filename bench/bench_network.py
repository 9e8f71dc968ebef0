"""The cost of the network model: warm invoke of a VPC Lambda, a DB connect and an API call from a worker.

"with" goes through the connect() hook and the model's decision (a new connection each time; the hook keeps
the model's answer while its generation holds); "without" makes the same connection to the server's own
address, which the hook leaves alone. The warm invoke is measured for the same code with and without
VpcConfig, interleaved, so that what the VPC costs is told apart from what the machine's load costs.

``instances`` measures what your computer meets at an instance: an HTTP request to its public IP (through the
front), a security-group change (every public address's ports are re-decided before it returns), a
connection inside the instance to its own 127.0.0.1, and the daemon's sockets and threads per instance.
``python bench/bench_network.py [lambda|instances]`` runs one part (both by default).
"""
from __future__ import annotations

import io
import json
import os
import sys
import time
import urllib.request
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


APP = "#!/bin/sh\nnohup python3 -m http.server {port} >/dev/null 2>&1 &\n"
IN_INSTANCE = ("python3 -c \"import socket, statistics, time\nt = []\nfor _ in range(200):\n"
               "    s = time.perf_counter(); socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
               "    t.append((time.perf_counter() - s) * 1000)\nprint(statistics.median(t))\"")


def main() -> None:
    parts = sys.argv[1:] or ["lambda", "instances"]
    with scratch_home() as home:
        _bench(home, parts)


def _bench(home: Path, parts: list[str]) -> None:
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
        if "instances" in parts:
            _bench_instances(status, ec2, iam, public, vpc)
        if "lambda" not in parts:
            return
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


def _bench_instances(status, ec2, iam, subnet: str, vpc: str) -> None:
    """Your computer -> an instance's app through its public IP; a group change; the instance's own loopback."""
    ssm = client(status, "ssm")
    iam.create_role(RoleName="bench-ec2", AssumeRolePolicyDocument=LAMBDA_TRUST.replace("lambda.", "ec2."))
    iam.attach_role_policy(RoleName="bench-ec2", PolicyArn="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")
    iam.create_instance_profile(InstanceProfileName="bench-ec2")
    iam.add_role_to_instance_profile(InstanceProfileName="bench-ec2", RoleName="bench-ec2")
    group = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    port = free_port()
    rule = [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=rule)
    fds_before, threads_before = _daemon_usage(status.pid)
    instance = ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro", UserData=APP.format(port=port),
        IamInstanceProfile={"Name": "bench-ec2"},
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet, "Groups": [group],
                            "AssociatePublicIpAddress": True}])["Instances"][0]
    url = f"http://{instance['PublicIpAddress']}:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            break
        except OSError:
            time.sleep(0.1)
    fds, threads = _daemon_usage(status.pid)
    report("daemon sockets/fds for one instance", fds - fds_before, "fds", "(its public IP's modelled ports)")
    report("daemon threads for one instance", threads - threads_before, "threads")
    times = []
    for _ in range(100):
        started = time.perf_counter()
        urllib.request.urlopen(url, timeout=5).read()
        times.append((time.perf_counter() - started) * 1000)
    report("HTTP GET at the public IP p50 (front)", percentile(times, 50), "ms", "(median of 100)")
    other = [{"IpProtocol": "tcp", "FromPort": 9, "ToPort": 9, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    times = []
    for _ in range(20):
        started = time.perf_counter()
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=other)
        ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=other)
        times.append((time.perf_counter() - started) * 500)
    report("security-group change p50 (re-decides fronts)", percentile(times, 50), "ms", "(one call, of 20 pairs)")
    command = ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[instance["InstanceId"]],
                               Parameters={"commands": [IN_INSTANCE.format(port=port)]})["Command"]["CommandId"]
    try:
        ssm.get_waiter("command_executed").wait(CommandId=command, InstanceId=instance["InstanceId"],
                                                 WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    finally:
        out = ssm.get_command_invocation(CommandId=command, InstanceId=instance["InstanceId"])
        print(out["StandardErrorContent"][-2000:], file=sys.stderr)
    report("TCP connect to its own 127.0.0.1 in an instance", float(out["StandardOutputContent"]), "ms",
           "(median of 200, through the hook)")
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])


def _daemon_usage(pid: int | None) -> tuple[int, int]:
    """The daemon's open file descriptors and threads."""
    return len(os.listdir(f"/proc/{pid}/fd")), len(os.listdir(f"/proc/{pid}/task"))


if __name__ == "__main__":
    main()
