"""EC2 instances get their instance profile role's credentials from IMDSv2, and nothing else."""
from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import until
from tests.helpers.ec2 import EC2_TRUST, instance_profile, launch, run_command

WHOAMI = ("python3 -c 'import boto3; print(boto3.client(\"sts\").get_caller_identity()[\"Arn\"])' 2>&1 | tail -1")
IMDS = ('T=$(python3 -c \'import os,urllib.request as u; r=u.Request(os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"]'
        '+"latest/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}); '
        'print(u.urlopen(r).read().decode())\')')


def test_profile_role_credentials_come_from_imds_only(cloud):
    profile = instance_profile(cloud.client("iam"), "imds-role")
    instance = launch(cloud, profile)
    result = run_command(cloud, instance, [
        "env | grep -c -E 'AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)=' || true",
        "grep -r -l -E 'ASIA|AKIA' \"$LABKIT_SANDBOX\"/root \"$LABKIT_SANDBOX\"/etc 2>/dev/null | wc -l", WHOAMI])
    env_keys, files_with_keys, arn = result["StandardOutputContent"].split()
    assert (env_keys, files_with_keys) == ("0", "0")
    assert arn == f"arn:aws:sts::123456789012:assumed-role/imds-role/{instance}"


def test_imdsv2_token_is_required(cloud):
    instance = launch(cloud, instance_profile(cloud.client("iam"), "imds-v2-role"))
    probe = ("import os, urllib.request as u, urllib.error as e\nbase = os.environ['AWS_EC2_METADATA_SERVICE_ENDPOINT']\n"
             "try:\n    u.urlopen(base + 'latest/meta-data/iam/security-credentials/')\nexcept e.HTTPError as x:\n"
             "    print(x.code)\n"
             "t = u.urlopen(u.Request(base + 'latest/api/token', method='PUT', "
             "headers={'X-aws-ec2-metadata-token-ttl-seconds': '60'})).read().decode()\n"
             "print(u.urlopen(u.Request(base + 'latest/meta-data/iam/security-credentials/', "
             "headers={'X-aws-ec2-metadata-token': t})).read().decode())\n")
    out = run_command(cloud, instance, [f"python3 - <<'EOF'\n{probe}EOF"])["StandardOutputContent"].split()
    assert out == ["401", "imds-v2-role"]


def test_instance_without_profile_has_no_credentials(cloud):
    instance = launch(cloud, None, user_data="#!/bin/sh\n" + WHOAMI + " > \"$LABKIT_SANDBOX/whoami.txt\"\n")
    path = Path(cloud.home) / "ec2" / instance / "var/lib/cloud/instance/boot-finished"
    until(path.exists, 30)
    assert "Unable to locate credentials" in (Path(cloud.home) / "ec2" / instance / "whoami.txt").read_text()


def test_role_that_does_not_trust_ec2_gives_no_credentials(cloud):
    iam = cloud.client("iam")
    iam.create_role(RoleName="not-ec2", AssumeRolePolicyDocument=EC2_TRUST.replace("ec2", "lambda"))
    iam.attach_role_policy(RoleName="not-ec2", PolicyArn="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")
    iam.create_instance_profile(InstanceProfileName="not-ec2")
    iam.add_role_to_instance_profile(InstanceProfileName="not-ec2", RoleName="not-ec2")
    instance = launch(cloud, "not-ec2")
    info = run_command(cloud, instance, [IMDS, 'python3 -c \'import os,sys,urllib.request as u; print(u.urlopen(u.Request('
                                         'os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"]+"latest/meta-data/iam/'
                                         'security-credentials/not-ec2", headers={"X-aws-ec2-metadata-token": sys.argv[1]}))'
                                         '.read().decode())\' "$T"'])
    assert json.loads(info["StandardOutputContent"])["Code"] == "AssumeRoleUnauthorizedAccess"
