"""RunInstances to running with user data done; SSM command round trip; 30-day clock advance."""
from __future__ import annotations

import io
import time
import zipfile

from common import client, control, local_cloud, report

from labkit.lambda_platform import runtime as lambda_runtime


def main() -> None:
    with local_cloud() as status:
        iam, ec2, ssm = client(status, "iam"), client(status, "ec2"), client(status, "ssm")
        iam.create_role(RoleName="bench-ec2", AssumeRolePolicyDocument="{}")
        iam.attach_role_policy(RoleName="bench-ec2", PolicyArn="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")
        iam.create_instance_profile(InstanceProfileName="bench-ec2")
        iam.add_role_to_instance_profile(InstanceProfileName="bench-ec2", RoleName="bench-ec2")
        started = time.perf_counter()
        instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                     IamInstanceProfile={"Name": "bench-ec2"},
                                     UserData="#!/bin/sh\necho booted > $HOME/booted\n")["Instances"][0]["InstanceId"]
        done = status.home / "ec2" / instance / "var/lib/cloud/instance/boot-finished"
        while not done.exists():
            time.sleep(0.005)
        report("RunInstances to running with user data done", (time.perf_counter() - started) * 1000, "ms")
        times = []
        for _ in range(20):
            started = time.perf_counter()
            command = ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[instance],
                                       Parameters={"commands": ["echo hi"]})["Command"]["CommandId"]
            while ssm.get_command_invocation(CommandId=command, InstanceId=instance)["Status"] != "Success":
                time.sleep(0.005)
            times.append((time.perf_counter() - started) * 1000)
        report("SSM command round trip (median of 20)", sorted(times)[10], "ms")

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("lambda_function.py", "def lambda_handler(e, c):\n    return e['time']\n")
        lam, events = client(status, "lambda"), client(status, "events")
        role = iam.create_role(RoleName="bench-fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        fn = lam.create_function(FunctionName="daily", Runtime=lambda_runtime(), Role=role,
                                 Handler="lambda_function.lambda_handler",
                                 Code={"ZipFile": buffer.getvalue()})["FunctionArn"]
        rule = events.put_rule(Name="daily", ScheduleExpression="rate(1 day)")["RuleArn"]
        events.put_targets(Rule="daily", Targets=[{"Id": "1", "Arn": fn}])
        lam.add_permission(FunctionName="daily", StatementId="events", Action="lambda:InvokeFunction",
                           Principal="events.amazonaws.com", SourceArn=rule)
        started = time.perf_counter()
        result = control.advance_clock(30 * 86400, status.home)
        report(f"clock advance 30 days, one daily rule ({len(result['firings'])} firings)",
               (time.perf_counter() - started) * 1000, "ms")


if __name__ == "__main__":
    main()
