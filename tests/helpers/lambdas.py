"""Lambda for tests: an execution role, a function from source, a pymysql layer."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pymysql

from labkit.lambda_platform import runtime as lambda_runtime
from tests.helpers import make_zip

LAMBDA_TRUST = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": '
                '"lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}')
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def role_arn(iam: Any, name: str = "test-lambda-role") -> str:
    """A Lambda execution role that may write its logs (AWSLambdaBasicExecutionRole), as the console makes."""
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
        iam.attach_role_policy(RoleName=name, PolicyArn=BASIC)
        return arn


def create_function(cloud: Any, name: str, source: str, role: str | None = None, **kwargs: Any) -> str:
    """A function (runtime: .venv-lambda's Python) whose ``lambda_function.py`` is ``source``, once Active; its ARN.

    The role is ``role_arn``'s unless ``role`` names one. 30 s unless the test sets Timeout (a cold boto3 client on
    a busy machine can take longer than AWS's default 3 s, and only timeout tests are about the timeout)."""
    kwargs.setdefault("Timeout", 30)
    lam = cloud.client("lambda")
    arn = lam.create_function(FunctionName=name, Runtime=lambda_runtime(), Role=role or role_arn(cloud.client("iam")),
                              Handler="lambda_function.lambda_handler",
                              Code={"ZipFile": make_zip({"lambda_function.py": source})}, **kwargs)["FunctionArn"]
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    return arn


def pymysql_layer_zip() -> bytes:
    """A layer holding this environment's pymysql (pure Python) under ``python/``."""
    package = Path(pymysql.__file__).parent
    return make_zip({f"python/pymysql/{path.relative_to(package)}": path.read_bytes()
                     for path in package.rglob("*.py")})
