"""EC2 for tests: an instance profile (with SSM's managed policy), a launched instance, commands run on it."""
from __future__ import annotations

from typing import Any

from botocore.exceptions import WaiterError

EC2_TRUST = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": '
             '"ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}')
SSM_CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
# What an SSM command ends in (the command_executed waiter's failure states are ends too: a command that exits 7
# is a result the tests read).
FINAL = {"Success", "Failed", "Cancelled", "TimedOut", "Cancelling"}


def instance_profile(iam: Any, name: str, ssm: bool = True) -> str:
    """A role trusting EC2 (managed by SSM unless ``ssm=False``) in an instance profile; both named ``name``."""
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=EC2_TRUST)
    if ssm:
        iam.attach_role_policy(RoleName=name, PolicyArn=SSM_CORE)
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    return name


def launch(cloud: Any, profile: str | None, user_data: str = "", **kwargs: Any) -> str:
    """Run one instance (in the default VPC unless ``kwargs`` say otherwise) and wait until it is running."""
    ec2 = cloud.client("ec2")
    kwargs.update({"IamInstanceProfile": {"Name": profile}} if profile else {})
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                 UserData=user_data, **kwargs)["Instances"][0]
    assert instance["State"]["Name"] == "pending"
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance["InstanceId"]], WaiterConfig={"Delay": 1})
    return instance["InstanceId"]


def run_command(cloud: Any, instance_id: str, commands: list[str], seconds: float = 30) -> dict:
    """Run shell ``commands`` on the instance (AWS-RunShellScript) and return the finished invocation, failed
    or not (its Status, ResponseCode and output are what the tests read)."""
    ssm = cloud.client("ssm")
    command_id = ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[instance_id],
                                  Parameters={"commands": commands})["Command"]["CommandId"]
    delay = 0.05
    try:
        ssm.get_waiter("command_executed").wait(CommandId=command_id, InstanceId=instance_id,
                                                WaiterConfig={"Delay": delay, "MaxAttempts": int(seconds / delay)})
    except WaiterError as exc:
        if exc.last_response.get("Status") not in FINAL:
            raise AssertionError(f"the command did not finish within {seconds:g} s: {exc.last_response}") from exc
        return exc.last_response
    return ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)


def local_get(cloud: Any, instance_id: str, *urls: str, seconds: float = 10) -> str:
    """GET each URL on the instance itself (through SSM, as a user would), retrying until ``seconds`` pass:
    the statuses (or the last error's name), one a line."""
    script = (f"python3 - <<'EOF'\nimport time, urllib.request\ndeadline = time.monotonic() + {seconds}\n"
              f"for url in {list(urls)!r}:\n"
              f"    while True:\n        try:\n            print(urllib.request.urlopen(url, timeout=1).status)\n"
              f"            break\n        except OSError as exc:\n            if time.monotonic() > deadline:\n"
              f"                print(type(getattr(exc, 'reason', exc)).__name__)\n                break\n"
              f"            time.sleep(0.1)\nEOF")
    result = run_command(cloud, instance_id, [script])
    assert result["Status"] == "Success", result
    return result["StandardOutputContent"].strip()
