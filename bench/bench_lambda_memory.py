"""What the lab's functions use of their MemorySize, as the local cloud measures it (issue 26 row 7).

Each mechanism the cloud can enforce the limit with (a cgroup where it can make one; the watchdog a student's
laptop without cgroup delegation gets, forced with LABKIT_LAMBDA_MEMORY=watchdog) runs, at 128 MB (the smallest
MemorySize, half the lab's 256 MB): a trivial function, and the lab's order validator as it ships (its code, the
pymysql layer built as labkit builds it, its clients made at import, a valid order it then tries to store; the
database is unreachable here, so each invoke ends in the validator's database error), three times each. It prints the REPORT lines' Max Memory Used: the first (cold) and the last (the warm peak).
For the report function over a million orders: bench_report_memory.py.
"""
from __future__ import annotations

import base64
import json
import os
import re

from common import LAMBDA_TRUST, client, free_port, local_cloud, report

from labkit import functions
from labkit.lambda_platform import runtime as lambda_runtime

POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
USED = re.compile(r"Max Memory Used: (\d+) MB")
ORDER = {"customer_name": "Ada", "product": "pen", "quantity": 1, "amount": "9.50"}


def _used(lam, name: str, event: dict) -> list[int]:
    figures = []
    for _ in range(3):
        response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail")
        response["Payload"].read()
        found = USED.search(base64.b64decode(response["LogResult"]).decode())
        figures.append(int(found[1]) if found else -1)
    return figures


def measure(mechanism: str) -> None:
    if mechanism == "watchdog":
        os.environ["LABKIT_LAMBDA_MEMORY"] = "watchdog"
    else:
        os.environ.pop("LABKIT_LAMBDA_MEMORY", None)
    with local_cloud() as status:
        iam, lam, sm = client(status, "iam"), client(status, "lambda"), client(status, "secretsmanager")
        role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
        iam.attach_role_policy(RoleName="bench", PolicyArn=POLICY)
        iam.put_role_policy(RoleName="bench", PolicyName="secret", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                                    "Resource": "*"}]}))
        sm.create_secret(Name="order-db-secret", SecretString=json.dumps({
            "username": "admin", "password": "x" * 12, "host": "127.0.0.1", "port": free_port(), "dbname": "orders"}))
        layer = lam.publish_layer_version(LayerName="pymysql", Content={"ZipFile": functions.build_layer()})
        shapes = {"trivial": (functions._zip({"lambda_function.py": b"def lambda_handler(e, c):\n    return 1\n"}), []),
                  "order-validator": (functions.package_function("order_validator", b""),
                                      [layer["LayerVersionArn"]])}
        for name, (code, layers) in shapes.items():
            lam.create_function(FunctionName=name, Runtime=lambda_runtime(), Role=role, MemorySize=128, Timeout=30,
                                Handler="lambda_function.lambda_handler", Code={"ZipFile": code}, Layers=layers,
                                Environment={"Variables": {"DB_SECRET_NAME": "order-db-secret"}})
            lam.get_waiter("function_active_v2").wait(FunctionName=name)
            figures = _used(lam, name, ORDER)
            report(f"{name} at 128 MB, {mechanism}: Max Memory Used, cold", figures[0], "MB")
            report(f"{name} at 128 MB, {mechanism}: Max Memory Used, warm peak", figures[-1], "MB")


def main() -> None:
    for mechanism in ("cloud's choice", "watchdog"):
        measure(mechanism)


if __name__ == "__main__":
    main()
