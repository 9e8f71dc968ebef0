"""Steps 5, 7, 8: the EC2 instance, commands on it through SSM Run Command, and the Flask app service.

Nothing here needs SSH: every "from the EC2 terminal" step is an SSM command, whose output is read back.
"""
from __future__ import annotations

import base64
import io
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
from botocore.exceptions import ClientError

from labkit import iam
from labkit.errors import StepError
from labkit.network import security_group_ids, vpc_ids
from labkit.session import Lab
from labkit.tagging import error_code, name_tag, tag_spec

PROJECT = Path(__file__).resolve().parents[1]
UBUNTU_PARAMETER = "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id"
UBUNTU_OWNER = "099720109477"
INSTANCE_TYPE = "t3.micro"
APP_DIR = '"$HOME/orders-app"'
PRELUDE = 'set -eu\nexport HOME="${HOME:-/root}"\nAPP_DIR=' + APP_DIR + "\n"
LIVE_STATES = ["pending", "running", "stopping", "stopped"]


def find_ubuntu_ami(lab: Lab) -> str:
    """Ubuntu 22.04 from Canonical's public SSM parameter, else the newest matching Canonical image."""
    try:
        return lab.client("ssm").get_parameter(Name=UBUNTU_PARAMETER)["Parameter"]["Value"]
    except ClientError as exc:
        if error_code(exc) not in ("ParameterNotFound", "AccessDeniedException"):
            raise
    images = lab.client("ec2").describe_images(Owners=[UBUNTU_OWNER], Filters=[
        {"Name": "name", "Values": ["ubuntu/images/hvm-ssd*/ubuntu-jammy-22.04-amd64-server-*"]},
        {"Name": "state", "Values": ["available"]}])["Images"]
    if not images:
        raise StepError(5, "no Ubuntu 22.04 image found in this region",
                        "check the region, or look up the AMI in the EC2 console's AMI catalog")
    return max(images, key=lambda i: i.get("CreationDate", ""))["ImageId"]


def describe_instance(lab: Lab) -> dict | None:
    reservations = lab.client("ec2").describe_instances(Filters=[
        *lab.tag_filter(), {"Name": "tag:Name", "Values": [f"{lab.name}-app"]},
        {"Name": "instance-state-name", "Values": LIVE_STATES}])["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    return instances[0] if instances else None


def launch_instance(lab: Lab) -> dict:
    """Step 5: the role and instance profile, then an Ubuntu 22.04 t3.micro in a public subnet, reachable by SSM."""
    ec2 = lab.client("ec2")
    profile_arn = iam.ensure_instance_profile(lab)
    instance = describe_instance(lab)
    if instance and instance["State"]["Name"] in ("stopping", "stopped"):
        ec2.get_waiter("instance_stopped").wait(InstanceIds=[instance["InstanceId"]])
        ec2.start_instances(InstanceIds=[instance["InstanceId"]])
    if instance is None:
        groups = security_group_ids(lab)
        if "ec2" not in groups:
            raise StepError(5, "the EC2 security group does not exist", "run step 3 (03_create_security_groups)")
        kwargs = dict(ImageId=find_ubuntu_ami(lab), InstanceType=INSTANCE_TYPE, MinCount=1, MaxCount=1,
                      SubnetId=vpc_ids(lab)["subnets"]["public-a"], SecurityGroupIds=[groups["ec2"]],
                      IamInstanceProfile={"Arn": profile_arn}, MetadataOptions={"HttpTokens": "required"},
                      TagSpecifications=tag_spec(lab, "instance", f"{lab.name}-app"))
        instance = _retry_profile_propagation(lambda: ec2.run_instances(**kwargs)["Instances"][0])
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance["InstanceId"]],
                                            WaiterConfig={"Delay": max(1, lab.target.poll_seconds)})
    wait_for_ssm(lab, instance["InstanceId"])
    return describe_instance(lab)


def _retry_profile_propagation(call, seconds: float = 120):
    """A new instance profile takes a few seconds to be usable by EC2 (IAM is eventually consistent)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except ClientError as exc:
            if "iamInstanceProfile" not in str(exc) and "instance profile" not in str(exc).lower():
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(5)


def wait_for_ssm(lab: Lab, instance_id: str, seconds: float = 600) -> None:
    """Wait until the SSM agent of the instance reports Online (it needs the SSM managed policy)."""
    ssm = lab.client("ssm")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        info = ssm.describe_instance_information(
            Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])["InstanceInformationList"]
        if info and info[0].get("PingStatus") == "Online":
            return
        time.sleep(lab.target.poll_seconds)
    raise StepError(5, f"{instance_id} never became reachable by SSM Run Command",
                    f"check that its instance profile's role {iam.EC2_ROLE} has AmazonSSMManagedInstanceCore "
                    "and that the subnet has a route to the internet")


def run_on_instance(lab: Lab, script: str, step: int | str = "command", timeout: int = 900) -> str:
    """Run a shell script on the instance with SSM Run Command; return its stdout, or raise with its stderr."""
    instance = describe_instance(lab)
    if instance is None:
        raise StepError(step, "the EC2 instance does not exist", "run step 5 (05_launch_ec2_instance) first")
    ssm, instance_id = lab.client("ssm"), instance["InstanceId"]
    command_id = ssm.send_command(InstanceIds=[instance_id], DocumentName="AWS-RunShellScript",
                                  Comment=f"Orders Lab step {step}"[:100], TimeoutSeconds=60,
                                  Parameters={"commands": [script], "executionTimeout": [str(timeout)]}
                                  )["Command"]["CommandId"]
    deadline = time.monotonic() + timeout + 60
    while time.monotonic() < deadline:
        try:
            result = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
        except ClientError as exc:
            if error_code(exc) != "InvocationDoesNotExist":
                raise
            result = {"Status": "Pending"}
        if result["Status"] in ("Success", "Failed", "TimedOut", "Cancelled"):
            if result["Status"] != "Success":
                raise StepError(step, f"the command on {instance_id} ended {result['Status']} "
                                      f"(exit code {result.get('ResponseCode')}):\n"
                                      f"{(result.get('StandardErrorContent') or result.get('StandardOutputContent', ''))[-1500:]}",
                                "read the error above; the command can be re-run once fixed")
            return result.get("StandardOutputContent", "")
        time.sleep(min(2.0, lab.target.poll_seconds / 4 or 0.1))
    raise StepError(step, f"the command on {instance_id} did not finish in {timeout} s")


def _requirements() -> str:
    return (PROJECT / "flask_app" / "requirements.txt").read_text()


def install_app_dependencies(lab: Lab) -> str:
    """Step 7: Python, a virtual environment, and flask/boto3/pymysql/gunicorn on the instance."""
    script = PRELUDE + f"""
python3 -c 'import ensurepip' 2>/dev/null || {{ apt-get update -qq && apt-get install -y -qq python3-venv; }}
mkdir -p "$APP_DIR"
cat > "$APP_DIR/requirements.txt" <<'REQUIREMENTS'
{_requirements()}REQUIREMENTS
[ -x "$APP_DIR/venv/bin/python" ] || python3 -m venv "$APP_DIR/venv"
"$APP_DIR/venv/bin/pip" install --quiet --disable-pip-version-check -r "$APP_DIR/requirements.txt"
"$APP_DIR/venv/bin/python" -c 'import flask, boto3, pymysql, gunicorn; print("flask", flask.__version__, "boto3", boto3.__version__, "pymysql", pymysql.__version__)'
"""
    return run_on_instance(lab, script, step=7).strip()


def _app_archive() -> str:
    buffer = io.BytesIO()
    root = PROJECT / "flask_app"
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                info = tar.gettarinfo(str(path), arcname=str(path.relative_to(root)))
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
    return base64.b64encode(buffer.getvalue()).decode()


UNIT = """[Unit]
Description=Orders Lab Flask app
After=network-online.target

[Service]
WorkingDirectory={app_dir}
EnvironmentFile={app_dir}/orders-app.env
ExecStart=/bin/sh -c 'exec {app_dir}/venv/bin/gunicorn --bind "$${{HOST:-0.0.0.0}}:$${{PORT:-5000}}" --workers 1 --threads 8 --access-logfile - "app:create_app()"'
Restart=always

[Install]
WantedBy=multi-user.target
"""


def deploy_app(lab: Lab) -> str:
    """Step 8: copy the Flask app to the instance, run it as a service, and return its URL once it answers."""
    archive = _app_archive()
    script = PRELUDE + f"""
[ -x "$APP_DIR/venv/bin/gunicorn" ] || {{ echo "the app's virtual environment is missing: run step 7 first" >&2; exit 3; }}
echo '{archive}' | base64 -d > "$APP_DIR/app.tar.gz"
NEW=$(sha256sum "$APP_DIR/app.tar.gz" | cut -d' ' -f1)
OLD=$(cat "$APP_DIR/.deployed" 2>/dev/null || true)
tar -xzf "$APP_DIR/app.tar.gz" -C "$APP_DIR"
ENV_FILE="$APP_DIR/orders-app.env"
KEY=$(grep -s '^FLASK_SECRET_KEY=' "$ENV_FILE" | cut -d= -f2- || true)
[ -n "$KEY" ] || KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
umask 077
cat > "$ENV_FILE" <<ENVFILE
ORDER_VALIDATOR_FUNCTION={iam.VALIDATOR_FUNCTION}
AWS_DEFAULT_REGION={lab.region}
PORT={lab.config.app_port}
FLASK_SECRET_KEY=$KEY
ENVFILE
umask 022
cat > "$APP_DIR/orders-app.service" <<'UNITFILE'
{UNIT.format(app_dir="@APP_DIR@")}UNITFILE
sed -i "s#@APP_DIR@#$APP_DIR#g" "$APP_DIR/orders-app.service"
systemctl daemon-reload
systemctl enable "$APP_DIR/orders-app.service" >/dev/null
if [ "$NEW" != "$OLD" ] || ! systemctl is-active --quiet orders-app; then systemctl restart orders-app; fi
echo "$NEW" > "$APP_DIR/.deployed"
systemctl is-active orders-app
"""
    run_on_instance(lab, script, step=8)
    url = app_url(lab)
    wait_for_url(url + "healthz", step=8)
    return url


def app_url(lab: Lab) -> str:
    instance = describe_instance(lab)
    if instance is None:
        raise StepError(8, "the EC2 instance does not exist", "run step 5 first")
    host = instance.get("PublicDnsName") or instance.get("PublicIpAddress")
    if not host:
        raise StepError(8, "the instance has no public address", "launch it in a public subnet (step 5)")
    return f"http://{host}:{lab.config.app_port}/"


def wait_for_url(url: str, step: int | str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise StepError(step, f"{url} did not answer within {seconds:.0f} s",
                            "check the service log with `journalctl -u orders-app` (run it through SSM) "
                            "and that the security group allows the app port from your address")
        time.sleep(0.25)


def instance_frame(lab: Lab) -> pd.DataFrame:
    instance = describe_instance(lab)
    if instance is None:
        return pd.DataFrame(columns=["name", "instance id", "state", "type", "image", "public address", "profile"])
    return pd.DataFrame([{
        "name": name_tag(instance), "instance id": instance["InstanceId"], "state": instance["State"]["Name"],
        "type": instance["InstanceType"], "image": instance["ImageId"],
        "public address": instance.get("PublicDnsName") or instance.get("PublicIpAddress"),
        "profile": instance.get("IamInstanceProfile", {}).get("Arn", "").rsplit("/", 1)[-1]}])
