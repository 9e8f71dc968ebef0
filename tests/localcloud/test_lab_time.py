"""One clock (issue 26, point 9): after the lab clock moves a day, every timestamp the cloud hands out is a day ahead
of real time, as one clock would have it on AWS: RDS, Secrets Manager, SSM, CloudWatch, EC2, IAM, Lambda, EventBridge,
S3, CloudWatch Logs, CloudTrail and the HTTP Date header."""
from __future__ import annotations

import datetime as dt
import email.utils
import json
import time

from tests.helpers import make_zip
from tests.helpers.ec2 import instance_profile, launch, run_command
from tests.helpers.lambdas import create_function

DAY = 86400.0
SLACK = 300.0  # seconds: a stamp is taken within the test's few minutes of lab time


def _epoch(value) -> float:
    if isinstance(value, (int, float)):
        return float(value) / (1000 if value > 1e11 else 1)  # Logs and EventBridge archives count milliseconds
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.timestamp()


def test_every_timestamp_follows_the_lab_clock(own_cloud):
    cloud = own_cloud
    cloud.request("POST", "/_labkit/clock/advance", {"seconds": DAY})
    start = time.time() + DAY  # lab time from here on
    stamps: dict[str, object] = {}

    rds = cloud.client("rds")  # a postgres record: moto keeps it, no server runs for it
    db = rds.create_db_instance(DBInstanceIdentifier="clock-pg", Engine="postgres", DBInstanceClass="db.t3.micro",
                                MasterUsername="admin", MasterUserPassword="Passw0rd-clock",
                                AllocatedStorage=20)["DBInstance"]
    stamps["rds InstanceCreateTime"] = db["InstanceCreateTime"]
    snapshot = rds.create_db_snapshot(DBInstanceIdentifier="clock-pg", DBSnapshotIdentifier="clock-snap")
    stamps["rds SnapshotCreateTime"] = snapshot["DBSnapshot"]["SnapshotCreateTime"]
    events = rds.describe_events(SourceIdentifier="clock-pg", SourceType="db-instance")["Events"]
    assert events, "DescribeEvents' default window (the last hour) is the lab clock's"
    stamps["rds event Date"] = events[-1]["Date"]

    sm = cloud.client("secretsmanager")
    sm.create_secret(Name="clock-secret", SecretString="{}")
    sm.put_secret_value(SecretId="clock-secret", SecretString='{"a": 1}')
    described = sm.describe_secret(SecretId="clock-secret")
    stamps["secretsmanager CreatedDate"] = described["CreatedDate"]
    stamps["secretsmanager LastChangedDate"] = described["LastChangedDate"]
    stamps["secretsmanager version CreatedDate"] = sm.get_secret_value(SecretId="clock-secret")["CreatedDate"]
    deleted = sm.delete_secret(SecretId="clock-secret", RecoveryWindowInDays=7)
    assert abs(_epoch(deleted["DeletionDate"]) - (start + 7 * DAY)) < SLACK

    ssm = cloud.client("ssm")
    ssm.put_parameter(Name="/clock/p", Value="v", Type="String")
    stamps["ssm parameter LastModifiedDate"] = ssm.get_parameter(Name="/clock/p")["Parameter"]["LastModifiedDate"]
    instance = launch(cloud, instance_profile(cloud.client("iam"), "clock-profile"))
    invocation = run_command(cloud, instance, ["date -u +%s"])
    assert abs(float(invocation["StandardOutputContent"]) - time.time() - DAY) < SLACK  # the instance's own clock
    command = ssm.list_commands(CommandId=invocation["CommandId"])["Commands"][0]
    stamps["ssm command RequestedDateTime"] = command["RequestedDateTime"]
    stamps["ssm invocation ExecutionStartDateTime"] = invocation["ExecutionStartDateTime"]
    ec2 = cloud.client("ec2")
    stamps["ec2 LaunchTime"] = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0][
        "LaunchTime"]
    vpc = ec2.create_vpc(CidrBlock="10.70.0.0/16")["Vpc"]["VpcId"]
    endpoint = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName="com.amazonaws.us-east-1.s3",
                                       VpcEndpointType="Gateway")["VpcEndpoint"]
    stamps["ec2 endpoint CreationTimestamp"] = endpoint["CreationTimestamp"]
    stamps["ec2 volume CreateTime"] = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["CreateTime"]
    stamps["ec2 key pair CreateTime"] = ec2.describe_key_pairs(
        KeyNames=[ec2.create_key_pair(KeyName="clock-key")["KeyName"]])["KeyPairs"][0]["CreateTime"]

    cw = cloud.client("cloudwatch")
    cw.put_metric_data(Namespace="Clock", MetricData=[{"MetricName": "Ticks", "Value": 1.0}])  # no Timestamp
    data = cw.get_metric_data(MetricDataQueries=[{"Id": "t", "MetricStat": {"Metric": {
        "Namespace": "Clock", "MetricName": "Ticks"}, "Period": 60, "Stat": "Sum"}}],
        StartTime=dt.datetime.fromtimestamp(start - 600, dt.timezone.utc),
        EndTime=dt.datetime.fromtimestamp(start + 600, dt.timezone.utc))["MetricDataResults"][0]
    assert data["Values"] == [1.0], "the datum is stamped in lab time, so it is in the lab's window"
    stamps["cloudwatch datum Timestamp"] = data["Timestamps"][0]
    cw.put_metric_alarm(AlarmName="clock-alarm", Namespace="Clock", MetricName="Ticks", Statistic="Sum", Period=60,
                        EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold")
    alarm = cw.describe_alarms(AlarmNames=["clock-alarm"])["MetricAlarms"][0]
    stamps["cloudwatch alarm StateUpdatedTimestamp"] = alarm["StateUpdatedTimestamp"]
    stamps["cloudwatch alarm AlarmConfigurationUpdatedTimestamp"] = alarm["AlarmConfigurationUpdatedTimestamp"]

    iam = cloud.client("iam")
    stamps["iam role CreateDate"] = iam.get_role(RoleName="clock-profile")["Role"]["CreateDate"]

    arn = create_function(cloud, "clock-fn", "def lambda_handler(event, context):\n    return 1\n")
    lam = cloud.client("lambda")
    stamps["lambda LastModified"] = lam.get_function_configuration(FunctionName=arn)["LastModified"]
    layer = lam.publish_layer_version(LayerName="clock-layer", Content={"ZipFile": make_zip({"python/x.py": ""})})
    stamps["lambda layer CreatedDate"] = layer["CreatedDate"]

    events = cloud.client("events")
    events.create_event_bus(Name="clock-bus")
    stamps["events bus CreationTime"] = events.describe_event_bus(Name="clock-bus")["CreationTime"]

    s3 = cloud.client("s3")
    s3.create_bucket(Bucket="clock-bucket-26")
    s3.put_object(Bucket="clock-bucket-26", Key="k", Body=b"x")
    stamps["s3 bucket CreationDate"] = next(b for b in s3.list_buckets()["Buckets"]
                                            if b["Name"] == "clock-bucket-26")["CreationDate"]
    stamps["s3 LastModified"] = s3.head_object(Bucket="clock-bucket-26", Key="k")["LastModified"]
    date_header = s3.head_object(Bucket="clock-bucket-26", Key="k")["ResponseMetadata"]["HTTPHeaders"]["date"]
    stamps["HTTP Date header"] = email.utils.parsedate_to_datetime(date_header)

    logs = cloud.client("logs")
    logs.create_log_group(logGroupName="/clock/group")
    stamps["logs group creationTime"] = logs.describe_log_groups(logGroupNamePrefix="/clock/group")[
        "logGroups"][0]["creationTime"]
    trail = cloud.client("cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "CreateEventBus"}])["Events"]
    stamps["cloudtrail EventTime"] = trail[0]["EventTime"]

    end = time.time() + DAY
    off = {name: round(_epoch(value) - time.time(), 1) for name, value in stamps.items()
           if not start - SLACK <= _epoch(value) <= end + SLACK}
    assert not off, f"timestamps not on the lab clock (seconds from real time): {json.dumps(off, indent=1)}"
