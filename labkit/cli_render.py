"""An API call as the AWS CLI command that makes the same request.

``aws <service> <operation-in-kebab-case> --<parameter-in-kebab-case> <value>``, the names from botocore's
``xform_name`` and the value as the CLI takes it: text and numbers as they are, a list of texts as separate
words, booleans as ``--flag`` / ``--no-flag``, structures and lists of structures as JSON. What was hidden
or reduced to its size when the call was recorded (:mod:`labkit.redact`) is given as a ``file://`` or
``fileb://`` reference, which is how the CLI reads a secret, a script or an archive from a file.
"""
from __future__ import annotations

import json
import shlex
from typing import Any

from botocore import xform_name

from labkit.redact import Blob, Hidden, plain

CLI_SERVICES = {"s3": "s3api"}  # botocore service name -> CLI command, where they differ
# The CLI's own shortcuts for a few parameters (awscli customizations): operation -> {parameter: flag}
ZIP_PARAMETERS = {("lambda", "CreateFunction"): "Code", ("lambda", "PublishLayerVersion"): "Content"}
FILE_NAMES = {"UserData": "user-data.sh", "SecretString": "secret.json", "ZipFile": "code.zip",
              "Body": "body.bin", "Payload": "payload.json"}


def cli_command(service: str, operation: str, params: dict[str, Any], model: Any = None) -> str:
    """The ``aws ...`` command for ``operation`` of ``service`` with (redacted) ``params``.

    ``model`` is botocore's operation model (for booleans, which the CLI writes as flags); without it a
    boolean is written as ``--flag`` or ``--no-flag`` all the same.
    """
    params = dict(params)
    words = ["aws", CLI_SERVICES.get(service, service), xform_name(operation, "-")]
    if (service, operation) in ZIP_PARAMETERS:
        code = params.pop(ZIP_PARAMETERS[service, operation], None) or {}
        if "ZipFile" in code:
            words += ["--zip-file", "fileb://code.zip"]
            code = {k: v for k, v in code.items() if k != "ZipFile"}
        if code:
            params[ZIP_PARAMETERS[service, operation]] = code
    if service == "ec2" and operation == "RunInstances" and params.get("MinCount") == params.get("MaxCount"):
        words += ["--count", str(params.pop("MaxCount", 1))]
        params.pop("MinCount", None)
    members = model.input_shape.members if model is not None and model.input_shape is not None else {}
    for name, value in params.items():
        words += _option(name, value, getattr(members.get(name), "type_name", None))
    if service == "lambda" and operation == "Invoke":
        words += ["--cli-binary-format", "raw-in-base64-out", "response.json"]
    return " ".join(words)


def _option(name: str, value: Any, type_name: str | None) -> list[str]:
    flag = "--" + xform_name(name, "-")
    if isinstance(value, bool) or type_name == "boolean":
        return [flag if value else "--no-" + flag[2:]]
    if isinstance(value, Hidden):
        return [flag, f"file://{FILE_NAMES.get(name, xform_name(name, '-') + '.txt')}"]
    if isinstance(value, Blob):
        return [flag, f"fileb://{FILE_NAMES.get(name, xform_name(name, '-') + '.bin')}"]
    if isinstance(value, (int, float)):
        return [flag, str(value)]
    if isinstance(value, str):
        return [flag, shlex.quote(value)]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return [flag, *(shlex.quote(str(v)) for v in value)]
    if hasattr(value, "isoformat"):
        return [flag, value.isoformat()]
    return [flag, shlex.quote(json.dumps(plain(value), separators=(",", ":"), default=str))]


def short_parameters(params: dict[str, Any]) -> str:
    """The key parameters of a call on one line: ``Name=value`` for each, in full (the table wraps them);
    secrets are already hidden and bytes already shown as their size."""
    parts = []
    for name, value in params.items():
        if isinstance(value, (dict, list)) and not isinstance(value, (Hidden, Blob)):
            text = json.dumps(plain(value), separators=(",", ":"), default=str)
        else:
            text = str(value)
        parts.append(f"{name}={text}")
    return ", ".join(parts)
