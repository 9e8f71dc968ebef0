"""Steps 5, 7, 8: the EC2 instance, commands on it through SSM Run Command, and the Flask app service.

Nothing here needs SSH: every "from the EC2 terminal" step is an SSM command, whose output is read back.
"""
from __future__ import annotations

import base64
import contextlib
import gzip
import io
import json
import math
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError, WaiterError
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)

from labkit import iam
from labkit.config import as_read
from labkit.errors import StepError, last_result
from labkit.lookups import LIVE_STATES, describe_instance, require_security_group, vpc_ids
from labkit.names import (
    EC2_ROLE,
    INSTANCE_TYPE,
    VALIDATOR_FUNCTION,
    VALIDATOR_TIMEOUT,
    instance_name,
    run_first,
    step_ref,
)
from labkit.session import Lab
from labkit.tagging import error_code, name_tag, tag_spec

__all__ = ["INSTANCE_TYPE", "LIVE_STATES", "PRELUDE", "UBUNTU_PARAMETER", "app_identity", "app_note", "app_url",
           "browser_url",
           "deploy_app", "describe_instance", "find_ubuntu_ami", "install_app_dependencies", "instance_frame",
           "launch_instance", "run_on_instance", "wait_for_app", "wait_for_ssm"]

PROJECT = Path(__file__).resolve().parents[1]
UBUNTU_PARAMETER = "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id"
UBUNTU_OWNER = "099720109477"
# The app lives in /opt/orders-app on the instance: root's files, which the service's own user can read (root's
# home, /root, is closed to other users). A script reaches the instance's / as the parent of root's home, /root,
# which holds on the local image too (its / is a folder of the local cloud's); ~/orders-app links to the app for
# commands typed by hand (step 7).
APP_DIR = '"$ROOT_FS/opt/orders-app"'
UNIT_PATH = '"$ROOT_FS/etc/systemd/system/orders-app.service"'
# A fresh Ubuntu instance runs cloud-init and unattended-upgrades at boot, which hold apt's locks: wait for
# cloud-init to finish, and let apt wait for the dpkg lock instead of failing at once. DPkg::Lock::Timeout covers
# dpkg's lock only: apt's update fails at once (exit 100, "Could not get lock /var/lib/apt/lists/lock") while
# apt-daily refreshes the lists, so apt_update tries again every APT_RETRY_SECONDS, for up to 10 minutes, on that
# error only; any other failure (no network, a bad source) is shown at once.
APT_RETRY_SECONDS = 10
APT_INSTALL = """apt_update() {
  tries=0
  while :; do
    out=$(apt-get -o DPkg::Lock::Timeout=600 update -qq 2>&1) && return 0
    code=$?
    case "$out" in
      *"Could not get lock"*|*"Unable to lock directory"*)
        [ "$tries" -lt @TRIES@ ] || break
        tries=$((tries + 1)); sleep @WAIT@ ;;
      *) break ;;
    esac
  done
  printf '%s\\n' "$out" >&2
  return "$code"
}
apt_install() {
  if command -v cloud-init >/dev/null 2>&1; then cloud-init status --wait >/dev/null 2>&1 || true; fi
  apt_update
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@"
}
""".replace("@TRIES@", str(600 // APT_RETRY_SECONDS)).replace("@WAIT@", str(APT_RETRY_SECONDS))
PRELUDE = ('set -eu\nexport HOME="${HOME:-/root}"\nROOT_FS="${HOME%/root}"\nAPP_DIR=' + APP_DIR + "\n"
           + APT_INSTALL)
FOREIGN_GRACE_SECONDS = 20  # a restarting app may still answer as its old self for a moment


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


def launch_instance(lab: Lab) -> dict:
    """Step 5: the role and instance profile, then an Ubuntu 22.04 t3.micro in a public subnet, reachable by SSM."""
    ec2 = lab.client("ec2")
    profile_arn = iam.ensure_instance_profile(lab)
    instance = describe_instance(lab)
    if instance and instance["State"]["Name"] in ("stopping", "stopped"):
        ec2.get_waiter("instance_stopped").wait(InstanceIds=[instance["InstanceId"]])
        ec2.start_instances(InstanceIds=[instance["InstanceId"]])
    if instance is None:
        group = require_security_group(lab, "ec2", step=5)
        kwargs = {"ImageId": find_ubuntu_ami(lab), "InstanceType": INSTANCE_TYPE, "MinCount": 1, "MaxCount": 1,
                      "SubnetId": vpc_ids(lab)["subnets"]["public-a"], "SecurityGroupIds": [group],
                      "IamInstanceProfile": {"Arn": profile_arn}, "MetadataOptions": {"HttpTokens": "required"},
                      "TagSpecifications": tag_spec(lab, "instance", instance_name(lab))}
        instance = _retry_profile_propagation(lambda: ec2.run_instances(**kwargs)["Instances"][0], lab)
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance["InstanceId"]],
                                            WaiterConfig={"Delay": max(1, lab.target.poll_seconds)})
    wait_for_ssm(lab, instance["InstanceId"])
    launched = describe_instance(lab)
    if launched is None:  # terminated (by hand, or by a teardown) while it started
        raise StepError(5, f"the instance {instance['InstanceId']} was terminated while it started",
                        "re-run this step to launch a new one")
    return launched


def _is_code(*codes: str) -> Callable[[BaseException], bool]:
    return lambda exc: isinstance(exc, ClientError) and error_code(exc) in codes


def _retry_profile_propagation(call: Callable[[], Any], lab: Lab, seconds: float = 120) -> Any:
    """A new instance profile takes a few seconds to be usable by EC2 (IAM is eventually consistent):
    RunInstances answers InvalidParameterValue (for iamInstanceProfile) until it is."""
    wait = min(5.0, max(0.5, lab.target.poll_seconds))
    return Retrying(retry=retry_if_exception(_is_code("InvalidParameterValue")), stop=stop_after_delay(seconds),
                    wait=wait_fixed(wait), reraise=True)(call)


def wait_for_ssm(lab: Lab, instance_id: str, seconds: float = 600) -> None:
    """Wait until the SSM agent of the instance reports Online (it needs the SSM managed policy)."""
    ssm = lab.client("ssm")

    def online() -> bool:
        info = ssm.describe_instance_information(
            Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])["InstanceInformationList"]
        return bool(info) and info[0].get("PingStatus") == "Online"

    try:
        Retrying(retry=retry_if_result(lambda ok: not ok), stop=stop_after_delay(seconds),
                 wait=wait_fixed(lab.target.poll_seconds))(online)
    except RetryError:
        raise StepError(5, f"{instance_id} never became reachable by SSM Run Command",
                        f"check that its instance profile's role {EC2_ROLE} has AmazonSSMManagedInstanceCore "
                        "and that the subnet has a route to the internet") from None


def run_on_instance(lab: Lab, script: str, step: int | str = "command", timeout: int = 900,
                    read_only: bool = False) -> str:
    """Run a shell script on the instance with SSM Run Command; return its stdout, or raise with its stderr.

    ``read_only``: the script only looks (a status, a log, a read-only query), so an unconfirmed aws lab sends it
    (:func:`labkit.config.as_read`); a script that installs or changes anything never says so."""
    instance = describe_instance(lab)
    if instance is None:
        raise StepError(step, "the EC2 instance does not exist", run_first(5))
    ssm, instance_id = lab.client("ssm"), instance["InstanceId"]
    with as_read("ssm:SendCommand") if read_only else contextlib.nullcontext():
        command_id = ssm.send_command(InstanceIds=[instance_id], DocumentName="AWS-RunShellScript",
                                      Comment=f"Orders Lab step {step}"[:100], TimeoutSeconds=60,
                                      Parameters={"commands": [script], "executionTimeout": [str(timeout)]}
                                      )["Command"]["CommandId"]
    delay = min(2.0, lab.target.poll_seconds / 4 or 0.1)
    ids = {"CommandId": command_id, "InstanceId": instance_id}
    try:
        ssm.get_waiter("command_executed").wait(**ids, WaiterConfig={
            "Delay": delay, "MaxAttempts": math.ceil((timeout + 60) / delay)})
    except WaiterError as exc:
        result = exc.last_response or {}
        if result.get("Error", {}).get("Code", "InvocationDoesNotExist") != "InvocationDoesNotExist":
            # an error no acceptor expects (AccessDenied, ...): AWS's own error, as from any other call
            raise ClientError(result, "GetCommandInvocation") from exc
        if result.get("Status") in ("Pending", "InProgress", "Delayed", None):
            raise StepError(step, f"the command on {instance_id} did not finish in {timeout} s") from exc
        raise StepError(step, f"the command on {instance_id} ended {result['Status']} "
                              f"(exit code {result.get('ResponseCode')}):\n"
                              f"{(result.get('StandardErrorContent') or result.get('StandardOutputContent', ''))[-1500:]}",
                        "read the error above; the command can be re-run once fixed") from exc
    return ssm.get_command_invocation(**ids).get("StandardOutputContent", "")


def _requirements() -> str:
    return (PROJECT / "flask_app" / "requirements.txt").read_text()


def install_app_dependencies(lab: Lab) -> str:
    """Step 7: Python, a virtual environment, and flask/boto3/pymysql/hypercorn on the instance."""
    script = PRELUDE + f"""
python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
if [ -d "$HOME/orders-app" ] && [ ! -L "$HOME/orders-app" ]; then  # the app's place before /opt/orders-app
  systemctl stop orders-app >/dev/null 2>&1 || true
  rm -rf "$HOME/orders-app"
fi
mkdir -p "$APP_DIR"
ln -sfn "$APP_DIR" "$HOME/orders-app"
cat > "$APP_DIR/requirements.txt" <<'REQUIREMENTS'
{_requirements()}REQUIREMENTS
[ -x "$APP_DIR/venv/bin/python" ] || python3 -m venv "$APP_DIR/venv"
"$APP_DIR/venv/bin/pip" install --quiet --disable-pip-version-check -r "$APP_DIR/requirements.txt"
"$APP_DIR/venv/bin/python" -c 'import flask, boto3, pymysql, hypercorn; print("flask", flask.__version__, "boto3", boto3.__version__, "pymysql", pymysql.__version__)'
"""
    return run_on_instance(lab, script, step=7).strip()


def _app_archive() -> str:
    """``flask_app/`` as a gzipped tar, base64: the same files with the same modification times give the same
    bytes (no owner, no time in the gzip header), so step 8 restarts the app only when the app changed.

    Each file keeps its modification time: the app serves ``static/`` with Last-Modified and an ETag made from
    it, so a file at 1970 would tell a browser nothing about a changed style sheet of the same size.
    """
    buffer = io.BytesIO()
    root = PROJECT / "flask_app"
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as packed, tarfile.open(fileobj=packed, mode="w") as tar:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                info = tar.gettarinfo(str(path), arcname=str(path.relative_to(root)))
                info.mtime = int(path.stat().st_mtime)
                info.uid, info.gid, info.uname, info.gname = 0, 0, "", ""
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
    return base64.b64encode(buffer.getvalue()).decode()


# The service runs as a user of its own, never root: the app answers the internet and its order API has no login.
# DynamicUser= has systemd make that user (orders-app) when the unit starts, with no login and no home, and keep
# the rest of the system read-only to it; the app only reads its files. systemd reads EnvironmentFile= as root, so
# the env file (the Flask secret key) stays readable by root alone.
UNIT = """[Unit]
Description=Orders Lab Flask app
After=network-online.target
StartLimitIntervalSec=60
StartLimitBurst=5

[Service]
User=orders-app
Group=orders-app
DynamicUser=yes
WorkingDirectory={app_dir}
EnvironmentFile={app_dir}/orders-app.env
ExecStart=/bin/sh -c 'exec {app_dir}/venv/bin/hypercorn --config {app_dir}/hypercorn.toml --bind "$${{HOST:-0.0.0.0}}:$${{PORT:-5000}}" "app:create_app()"'
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
"""


def deploy_app(lab: Lab) -> str:
    """Step 8: copy the Flask app to the instance, run it as a service, and return its URL once it answers.

    The app's ``/healthz`` names the instance it runs on: the URL counts as deployed only when the app
    answering there is this lab's instance (not another lab's app on the same address, not a stale one).
    """
    instance = describe_instance(lab)
    if instance is None:
        raise StepError(8, "the EC2 instance does not exist", run_first(5))
    archive = _app_archive()
    script = PRELUDE + f"""
[ -x "$APP_DIR/venv/bin/hypercorn" ] || {{ echo "the app's virtual environment is missing: {run_first(7)}" >&2; exit 3; }}
echo '{archive}' | base64 -d > "$APP_DIR/app.tar.gz"
OLD=$(cat "$APP_DIR/.deployed" 2>/dev/null || true)
tar -xzf "$APP_DIR/app.tar.gz" -C "$APP_DIR"
ENV_FILE="$APP_DIR/orders-app.env"
KEY=$(grep -s '^FLASK_SECRET_KEY=' "$ENV_FILE" | cut -d= -f2- || true)
[ -n "$KEY" ] || KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
umask 077
cat > "$ENV_FILE" <<ENVFILE
ORDER_VALIDATOR_FUNCTION={VALIDATOR_FUNCTION}
VALIDATOR_TIMEOUT_SECONDS={VALIDATOR_TIMEOUT}
AWS_DEFAULT_REGION={lab.region}
PORT={lab.config.app_port}
INSTANCE_ID={instance["InstanceId"]}
FLASK_SECRET_KEY=$KEY
ENVFILE
umask 022
UNIT={UNIT_PATH}
systemctl disable orders-app >/dev/null 2>&1 || true  # an earlier unit linked from elsewhere
rm -f "$UNIT"
cat > "$UNIT" <<'UNITFILE'
{UNIT.format(app_dir="@APP_DIR@")}UNITFILE
sed -i "s#@APP_DIR@#$APP_DIR#g" "$UNIT"
systemctl daemon-reload
systemctl enable orders-app >/dev/null
NEW=$(cat "$APP_DIR/app.tar.gz" "$ENV_FILE" "$UNIT" | sha256sum | cut -d' ' -f1)
if [ "$NEW" != "$OLD" ] || ! systemctl is-active --quiet orders-app; then systemctl restart orders-app; fi
echo "$NEW" > "$APP_DIR/.deployed"
systemctl is-active orders-app
"""
    run_on_instance(lab, script, step=8)
    url = app_url(lab)
    wait_for_app(lab, url, instance["InstanceId"], step=8)
    return url


def app_log(lab: Lab, lines: int = 40) -> str:
    """The app service's status and the end of its log on the instance (as `journalctl -u orders-app`)."""
    try:
        return run_on_instance(lab, f"systemctl status orders-app --no-pager 2>&1 | head -5 || true\n"
                                    f"journalctl -u orders-app --no-pager -n {lines} 2>&1 || true", step=8,
                               read_only=True).rstrip()
    except StepError as exc:
        return f"(the service log could not be read: {exc})"


def app_identity(url: str, timeout: float = 10) -> str | None:
    """The instance id the app at ``url`` names on ``/healthz``; None when nothing answers as the Orders app.

    The timeout is the health probe's: on a busy machine the app may take seconds to answer.
    """
    try:
        with urllib.request.urlopen(url + "healthz", timeout=timeout) as response:
            body = json.loads(response.read() or b"{}")
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("status") != "ok":
        return None
    return str(body.get("instance_id") or "")


def wait_for_app(lab: Lab, url: str, instance_id: str, step: int | str, seconds: float = 90) -> None:
    """Wait until the app at ``url`` answers as ``instance_id``; fail clearly when another listener answers.

    A failure shows the end of the service's log from the instance, so a crash at start-up is visible.
    """
    in_time = stop_after_delay(seconds)

    def give_up(attempt: RetryCallState) -> bool:  # at the deadline, or when another app answers for long
        return in_time(attempt) or (last_result(attempt) is not None
                                    and (attempt.seconds_since_start or 0.0) > FOREIGN_GRACE_SECONDS)

    try:
        Retrying(retry=retry_if_result(lambda found: found != instance_id), wait=wait_fixed(0.25),
                 stop=give_up)(app_identity, url)
        return
    except RetryError as exc:
        found = exc.last_attempt.result()
    if found is None:
        problem = f"{url} did not answer as the Orders app within {seconds:.0f} s"
    else:
        problem = (f"{url} is answered by another app (instance {found or 'unnamed'}), not by this "
                   f"lab's instance {instance_id}: orders sent there would land in someone else's database")
    raise StepError(step, f"{problem}. The app service on {instance_id}:\n{app_log(lab)}",
                    "fix what the service log shows (or stop what else listens on that address), "
                    "then re-run this step")


def _app_address(lab: Lab) -> tuple[str, int, str]:
    """The app's host and port as your computer reaches them, and a note when the port is not the app's."""
    instance = describe_instance(lab)
    if instance is None:
        raise StepError(8, "the EC2 instance does not exist", run_first(5))
    host = instance.get("PublicDnsName") or instance.get("PublicIpAddress")
    if not host:
        raise StepError(8, "the instance has no public address", f"launch it in a public subnet ({step_ref(5)})")
    port, note = lab.target.public_port(instance.get("PublicIpAddress") or host, lab.config.app_port)
    return host, port, note


def app_url(lab: Lab) -> str:
    """The app's URL as your computer reaches it: deployment, checks and orders all go through it."""
    host, port, _ = _app_address(lab)
    return f"http://{host}:{port}/"


def app_note(lab: Lab) -> str:
    """Why the app's URL has a port other than the app's (empty when it has not)."""
    return _app_address(lab)[2]


def browser_url(lab: Lab) -> str:
    """The app's address as the student's browser opens it (through the Hub when the lab runs on JupyterHub)."""
    return lab.target.browser_url(app_url(lab))


def app_link(lab: Lab) -> str:
    """The app's address as a Markdown link, with what stands there on AWS when the address is a local one."""
    link = browser_url(lab)
    on_aws = lab.target.aws_name("instance")
    note = app_note(lab)
    return (f"[{link}]({link})" + (f" (on AWS a DNS name like http://{on_aws}:{lab.config.app_port}/)" if on_aws else "")
            + (f"\n\nNote: {note}." if note else ""))


def instance_frame(lab: Lab) -> pd.DataFrame:
    """The lab's instance: name, id, state, type, image, public address, profile, and what it is on this target
    ("runs as": on the local cloud a sandbox on your machine, whose ``uname`` shows your machine's kernel, not a
    VM booted from the Ubuntu image the image column names, which is what AWS would launch)."""
    columns = ["name", "instance id", "state", "type", "image", "public address", "profile", "runs as"]
    instance = describe_instance(lab)
    if instance is None:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame([{
        "name": name_tag(instance), "instance id": instance["InstanceId"], "state": instance["State"]["Name"],
        "type": instance["InstanceType"], "image": instance["ImageId"],
        "public address": lab.target.as_on_aws("instance", instance.get("PublicDnsName")
                                               or instance.get("PublicIpAddress") or ""),
        "profile": instance.get("IamInstanceProfile", {}).get("Arn", "").rsplit("/", 1)[-1],
        "runs as": lab.target.instance_runs_as}], columns=columns)
