"""What realistic mode takes, in real seconds (the figures of labkit/localcloud/core/timing.py, measured).

A cloud started with ``realistic=True`` (the default delays): how long a DB instance reads ``rebooting`` after
RebootDBInstance (rds_reboot, 45 s), how long a new policy takes to let a function's call through (iam_propagation,
8 s), how long a new interface endpoint reads ``pending`` (endpoint_create, 60 s); and the same in fast mode.
``python bench/bench_realistic.py`` (about four minutes).
"""
from __future__ import annotations

import io
import json
import time
import zipfile

from common import LAMBDA_TRUST, client, control, free_port, scratch_home

from labkit.lambda_platform import runtime as lambda_runtime

CALL = '''import boto3
def lambda_handler(event, context):
    try:
        boto3.client("secretsmanager").list_secrets()
        return "ok"
    except Exception as exc:
        return type(exc).__name__
'''
LIST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:ListSecrets",
                                                           "Resource": "*"}]})


def _zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("lambda_function.py", source)
    return buffer.getvalue()


def _until(check, seconds: float = 600) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            raise TimeoutError("never happened")
        time.sleep(0.1)
    return time.monotonic() - started


def reboot(status, rds, ident: str) -> float:
    rds.reboot_db_instance(DBInstanceIdentifier=ident)
    return _until(lambda: rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0][
        "DBInstanceStatus"] == "available")


def propagation(status, iam, lam, role: str, function: str) -> float:
    iam.put_role_policy(RoleName=role, PolicyName="list", PolicyDocument=LIST)
    seconds = _until(lambda: json.loads(lam.invoke(FunctionName=function)["Payload"].read()) == "ok")
    iam.delete_role_policy(RoleName=role, PolicyName="list")
    _until(lambda: json.loads(lam.invoke(FunctionName=function)["Payload"].read()) != "ok")
    return seconds


def pending(ec2, vpc: str, subnet: str) -> float:
    started = time.monotonic()
    endpoint = ec2.create_vpc_endpoint(VpcId=vpc, VpcEndpointType="Interface", SubnetIds=[subnet],
                                       ServiceName="com.amazonaws.us-east-1.kms", PrivateDnsEnabled=False
                                       )["VpcEndpoint"]["VpcEndpointId"]
    _until(lambda: ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"][0]["State"] == "available")
    ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint])
    return time.monotonic() - started


def main() -> None:
    with scratch_home() as home:
        status = control.start_cloud(port=free_port(), home=home)
        try:
            rds, iam, lam, ec2 = (client(status, s) for s in ("rds", "iam", "lambda", "ec2"))
            vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
            subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.77.{i}.0/24", AvailabilityZone=f"us-east-1{z}")[
                "Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
            rds.create_db_subnet_group(DBSubnetGroupName="bench", DBSubnetGroupDescription="b", SubnetIds=subnets)
            rds.create_db_instance(DBInstanceIdentifier="bench-db", Engine="mariadb", DBInstanceClass="db.t3.micro",
                                   MasterUsername="admin", MasterUserPassword="Bench-pass1", AllocatedStorage=20,
                                   DBSubnetGroupName="bench")
            rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier="bench-db", WaiterConfig={"Delay": 1})
            role = iam.create_role(RoleName="bench-role", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
            lam.create_function(FunctionName="bench-fn", Runtime=lambda_runtime(), Role=role, Timeout=30,
                                Handler="lambda_function.lambda_handler", Code={"ZipFile": _zip(CALL)})
            lam.get_waiter("function_active_v2").wait(FunctionName="bench-fn")
            for realistic in (False, True):
                setting = control.set_timing(realistic, home=home)
                mode = "realistic" if realistic else "fast"
                figures = [("RebootDBInstance -> available", reboot(status, rds, "bench-db"), "rds_reboot"),
                           ("PutRolePolicy -> the function's call works",
                            propagation(status, iam, lam, "bench-role", "bench-fn"), "iam_propagation"),
                           ("CreateVpcEndpoint -> available", pending(ec2, vpc, subnets[0]), "endpoint_create")]
                for what, seconds, delay in figures:
                    print(f"{mode:<9} {what:<44} {seconds:6.1f} s  ({delay} {setting['delays'][delay]:g} s "
                          "when realistic)")
        finally:
            control.stop_cloud(home)


if __name__ == "__main__":
    main()
