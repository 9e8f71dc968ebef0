"""What IAM enforcement costs: warm invoke p50 and one API call's p50, with enforcement on and off.

Every request is signed and checked (SigV4 against the caller's keys) in both modes; "off" skips only the
policy evaluation, so the difference is the cost of authorization, and "on" is what the lab runs.
"""
from __future__ import annotations

import io
import zipfile

from common import LAMBDA_TRUST, client, local_cloud, p50, report

from labkit.lambda_platform import runtime as lambda_runtime

SOURCE = "def lambda_handler(event, context):\n    return {'ok': True}\n"
POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def measure(mode: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("lambda_function.py", SOURCE)
    with local_cloud(iam=mode) as status:
        iam, lam, sm = client(status, "iam"), client(status, "lambda"), client(status, "secretsmanager")
        role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
        iam.attach_role_policy(RoleName="bench", PolicyArn=POLICY)
        lam.create_function(FunctionName="trivial", Runtime=lambda_runtime(), Role=role,
                            Handler="lambda_function.lambda_handler", Code={"ZipFile": buffer.getvalue()})
        lam.get_waiter("function_active_v2").wait(FunctionName="trivial")
        sm.create_secret(Name="bench-secret", SecretString="x")
        report(f"warm invoke p50, IAM {mode}", p50(lambda: lam.invoke(FunctionName="trivial")["Payload"].read()),
               "ms", "(target <= 5 ms)" if mode == "on" else "")
        report(f"GetSecretValue p50, IAM {mode}", p50(lambda: sm.get_secret_value(SecretId="bench-secret")), "ms")
        report(f"ListRoles p50, IAM {mode}", p50(lambda: iam.list_roles()), "ms")


def main() -> None:
    for mode in ("on", "off"):
        measure(mode)


if __name__ == "__main__":
    main()
