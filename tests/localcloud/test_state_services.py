"""Issue 23, per service: a resource created, one changed and one deleted before a crash are in that state after
the next start. One cloud for the module: everything is made, the daemon is killed (``kill -9``) right after the
last acknowledged request, its processes are left to the next start to find, and the lab comes back; then each test
checks one service. A schedule that fell due while the cloud was down is handled by the documented rule."""
from __future__ import annotations

import base64
import datetime as dt
import json
import os
import signal
import time

import psutil
import pymysql
import pytest

from labkit.localcloud import control
from labkit.localcloud.procs import CLOUD_MARKER, faketime_shared_files, find_marked
from tests.helpers import Cloud, free_port, make_zip, stop_test_cloud, until
from tests.helpers.ec2 import instance_profile, launch, run_command
from tests.helpers.lambdas import create_function
from tests.helpers.rds import PASSWORD, public_db_network

DAY = 86400
PERIOD = 12 * 3600
UNIT = ("[Unit]\nDescription=boots\n[Service]\nExecStart=/bin/sh -c 'echo started >> units.log; exec sleep 3600'"
        "\n[Install]\nWantedBy=multi-user.target\n")  # its working directory: the instance's /
USER_DATA = "#!/bin/bash\necho ran >> $HOME/user-data.log\necho kept > $HOME/file.txt\n"
TARGET_SOURCE = "def lambda_handler(event, context):\n    return {'time': event.get('time')}\n"


def _db(endpoint: dict) -> pymysql.Connection:
    return pymysql.connect(host=endpoint["Address"], port=endpoint["Port"], user="admin", password=PASSWORD,
                           database="ordersdb", autocommit=True, connect_timeout=10)


def _build(cloud: Cloud) -> dict:
    """Everything the tests look at after the crash: made, changed, deleted."""
    c = cloud.client
    ec2, iam, rds, sm, ssm, lam = c("ec2"), c("iam"), c("rds"), c("secretsmanager"), c("ssm"), c("lambda")
    logs, s3, events, cw, sts = c("logs"), c("s3"), c("events"), c("cloudwatch"), c("sts")
    made: dict = {}
    # EC2: a tagged VPC, groups (one deleted), an Elastic IP, a running instance with a unit, a stopped one
    groups = public_db_network(ec2, rds, "state")
    made["db_group"] = groups[0]
    vpc = ec2.describe_security_groups(GroupIds=groups)["SecurityGroups"][0]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "changed", "Value": "yes"}])
    gone = ec2.create_security_group(GroupName="state-gone", Description="gone", VpcId=vpc)["GroupId"]
    ec2.delete_security_group(GroupId=gone)
    made.update(vpc=vpc, gone_group=gone, eip=ec2.allocate_address(Domain="vpc")["PublicIp"])
    # network ACLs: a custom one on a subnet of its own, an entry made, one replaced, one deleted; one ACL deleted
    acl_subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.250.0/24")["Subnet"]["SubnetId"]
    acl = ec2.create_network_acl(VpcId=vpc, TagSpecifications=[{"ResourceType": "network-acl", "Tags": [
        {"Key": "Name", "Value": "state-acl"}]}])["NetworkAcl"]["NetworkAclId"]
    for number, port in ((100, 443), (110, 80), (120, 22)):
        ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=number, Protocol="6", RuleAction="allow",
                                     Egress=False, CidrBlock="10.0.0.0/8", PortRange={"From": port, "To": port})
    ec2.replace_network_acl_entry(NetworkAclId=acl, RuleNumber=110, Protocol="6", RuleAction="deny", Egress=False,
                                  CidrBlock="10.1.2.3/16", PortRange={"From": 8080, "To": 8080})
    ec2.delete_network_acl_entry(NetworkAclId=acl, RuleNumber=120, Egress=False)
    association = next(a["NetworkAclAssociationId"] for a in ec2.describe_network_acls(Filters=[
        {"Name": "association.subnet-id", "Values": [acl_subnet]}])["NetworkAcls"][0]["Associations"]
        if a["SubnetId"] == acl_subnet)
    made["acl_association"] = ec2.replace_network_acl_association(AssociationId=association, NetworkAclId=acl)[
        "NewAssociationId"]
    gone_acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    ec2.delete_network_acl(NetworkAclId=gone_acl)
    made.update(acl=acl, acl_subnet=acl_subnet, gone_acl=gone_acl)
    profile = instance_profile(iam, "state-profile")
    running = launch(cloud, profile, USER_DATA)
    result = run_command(cloud, running, [f"cat > $HOME/boots.service <<'EOF'\n{UNIT}EOF",
                                          "systemctl enable --now $HOME/boots.service"])
    assert result["Status"] == "Success", result
    made["command"] = result["CommandId"]
    stopped = launch(cloud, None)
    ec2.stop_instances(InstanceIds=[stopped])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[stopped], WaiterConfig={"Delay": 1})
    made.update(running=running, stopped=stopped,
                public_ip=ec2.describe_instances(InstanceIds=[running])["Reservations"][0]["Instances"][0]
                ["PublicIpAddress"])
    # IAM and STS: a role with a policy, a user with a key, a user deleted, a role session
    iam.create_user(UserName="state-user")
    made["user_key"] = iam.create_access_key(UserName="state-user")["AccessKey"]
    iam.put_user_policy(UserName="state-user", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity",
                                               "Resource": "*"}]}))
    iam.create_user(UserName="state-gone-user")
    iam.delete_user(UserName="state-gone-user")
    account = sts.get_caller_identity()["Account"]
    session_role = iam.create_role(RoleName="state-session-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                                               "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    iam.put_role_policy(RoleName="state-session-role", PolicyName="who", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]}))
    made["session"] = sts.assume_role(RoleArn=session_role, RoleSessionName="kept")["Credentials"]
    # RDS: one available with a row, one stopped, a subnet group deleted
    for ident in ("state-db", "state-db-stopped"):
        rds.create_db_instance(DBInstanceIdentifier=ident, Engine="mysql", DBInstanceClass="db.t3.micro",
                               MasterUsername="admin", MasterUserPassword=PASSWORD, DBName="ordersdb",
                               AllocatedStorage=20, DBSubnetGroupName="state", PubliclyAccessible=True,
                               VpcSecurityGroupIds=groups)
    for ident in ("state-db", "state-db-stopped"):
        rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=ident, WaiterConfig={"Delay": 1})
    db = rds.describe_db_instances(DBInstanceIdentifier="state-db")["DBInstances"][0]
    made["db_endpoint"] = db["Endpoint"]
    rds.add_tags_to_resource(ResourceName=db["DBInstanceArn"], Tags=[{"Key": "changed", "Value": "yes"}])
    with _db(db["Endpoint"]) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE kept (id INT PRIMARY KEY, note VARCHAR(20)) ENGINE=InnoDB")
        cur.execute("INSERT INTO kept VALUES (1, 'committed')")
    rds.stop_db_instance(DBInstanceIdentifier="state-db-stopped")
    until(lambda: rds.describe_db_instances(DBInstanceIdentifier="state-db-stopped")["DBInstances"][0]
          ["DBInstanceStatus"] == "stopped", 60, 0.2, message="the DB to stop")
    subnets = rds.describe_db_subnet_groups(DBSubnetGroupName="state")["DBSubnetGroups"][0]["Subnets"]
    rds.create_db_subnet_group(DBSubnetGroupName="state-gone", DBSubnetGroupDescription="gone",
                               SubnetIds=[s["SubnetIdentifier"] for s in subnets])
    rds.delete_db_subnet_group(DBSubnetGroupName="state-gone")
    # Secrets Manager: a secret with two versions, one deleted
    made["secret_v1"] = sm.create_secret(Name="state-secret", SecretString="one")["VersionId"]
    made["secret_v2"] = sm.put_secret_value(SecretId="state-secret", SecretString="two")["VersionId"]
    sm.create_secret(Name="state-gone-secret", SecretString="x")
    sm.delete_secret(SecretId="state-gone-secret", ForceDeleteWithoutRecovery=True)
    # SSM: a parameter overwritten, one deleted (the command above is kept too)
    ssm.put_parameter(Name="/state/p", Value="one", Type="String")
    ssm.put_parameter(Name="/state/p", Value="two", Type="String", Overwrite=True)
    ssm.put_parameter(Name="/state/gone", Value="x", Type="String")
    ssm.delete_parameter(Name="/state/gone")
    # Lambda: a function changed, with an alias, a permission and a layer; one deleted; the missed-schedule target
    layer = lam.publish_layer_version(LayerName="state-layer", Content={"ZipFile": make_zip(
        {"python/state_layer.py": "VALUE = 'from the layer'\n"})})["LayerVersionArn"]
    create_function(cloud, "state-fn", "import state_layer\ndef lambda_handler(e, c):\n    return state_layer.VALUE\n",
                    Layers=[layer])
    lam.update_function_configuration(FunctionName="state-fn", MemorySize=256,
                                      Environment={"Variables": {"CHANGED": "yes"}})
    lam.get_waiter("function_updated_v2").wait(FunctionName="state-fn")
    made["fn_version"] = lam.publish_version(FunctionName="state-fn")["Version"]
    lam.create_alias(FunctionName="state-fn", Name="live", FunctionVersion=made["fn_version"])
    lam.add_permission(FunctionName="state-fn", StatementId="s3", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com")
    assert json.loads(lam.invoke(FunctionName="state-fn")["Payload"].read()) == "from the layer"
    create_function(cloud, "state-gone-fn", "def lambda_handler(e, c):\n    return 1\n")
    lam.delete_function(FunctionName="state-gone-fn")
    target = create_function(cloud, "state-target", TARGET_SOURCE)
    # CloudWatch Logs and metrics, S3, EventBridge
    logs.create_log_group(logGroupName="/state/kept")
    logs.put_retention_policy(logGroupName="/state/kept", retentionInDays=7)
    logs.create_log_stream(logGroupName="/state/kept", logStreamName="s")
    logs.put_log_events(logGroupName="/state/kept", logStreamName="s",
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": "kept line"}])
    logs.create_log_group(logGroupName="/state/gone")
    logs.delete_log_group(logGroupName="/state/gone")
    cw.put_metric_data(Namespace="State", MetricData=[{"MetricName": "kept", "Value": 1.0}])
    cw.put_metric_alarm(AlarmName="state-alarm", MetricName="kept", Namespace="State", Statistic="Sum", Period=60,
                        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
    cw.put_metric_alarm(AlarmName="state-gone-alarm", MetricName="kept", Namespace="State", Statistic="Sum",
                        Period=60, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
    cw.delete_alarms(AlarmNames=["state-gone-alarm"])
    s3.create_bucket(Bucket="state-bucket")
    s3.put_object(Bucket="state-bucket", Key="changed.txt", Body=b"first")
    made["etag"] = s3.put_object(Bucket="state-bucket", Key="changed.txt", Body=b"second")["ETag"]
    made["big_etag"] = s3.put_object(Bucket="state-bucket", Key="big.bin", Body=os.urandom(1 << 20))["ETag"]
    s3.put_object(Bucket="state-bucket", Key="gone.txt", Body=b"x")
    s3.delete_object(Bucket="state-bucket", Key="gone.txt")
    for name in ("state-rule", "state-disabled", "state-gone-rule"):
        events.put_rule(Name=name, ScheduleExpression="rate(1 day)")
    events.put_targets(Rule="state-rule", Targets=[{"Id": "fn", "Arn": target}])
    events.disable_rule(Name="state-disabled")
    events.delete_rule(Name="state-gone-rule")
    late = events.put_rule(Name="state-late", ScheduleExpression="rate(12 hours)")["RuleArn"]
    lam.add_permission(FunctionName="state-target", StatementId="events", Action="lambda:InvokeFunction",
                       Principal="events.amazonaws.com", SourceArn=late)
    events.put_targets(Rule="state-late", Targets=[
        {"Id": "young", "Arn": target},
        {"Id": "strict", "Arn": target, "RetryPolicy": {"MaximumEventAgeInSeconds": PERIOD}}])
    events.put_rule(Name="state-hourly", ScheduleExpression="rate(1 hour)")  # fires once in the advance below:
    events.put_targets(Rule="state-hourly", Targets=[{"Id": "fn", "Arn": target}])  # not allowed: a failed one
    # EventBridge Scheduler: one schedule kept, one disabled by an update, one deleted
    sched_role = c("iam").create_role(RoleName="state-scheduler", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    c("iam").put_role_policy(RoleName="state-scheduler", PolicyName="invoke", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction",
                                                "Resource": target}]}))
    scheduler = c("scheduler")
    sched = {"ScheduleExpression": "cron(0 6 * * ? *)", "FlexibleTimeWindow": {"Mode": "OFF"},
             "Target": {"Arn": target, "RoleArn": sched_role, "Input": '{"time": "<aws.scheduler.scheduled-time>"}'}}
    for name in ("state-schedule", "state-schedule-off", "state-schedule-gone"):
        scheduler.create_schedule(Name=name, **sched)
    scheduler.update_schedule(Name="state-schedule-off", State="DISABLED", **sched)
    scheduler.delete_schedule(Name="state-schedule-gone")
    # the lab clock and the event history
    control.advance_clock(3660, cloud.home)
    made["events_metrics"] = until(lambda: _events_metrics(cw, cloud.home, "state-hourly"), 30,
                                   message="EventBridge's metrics of the hourly firing")  # within half a second
    # realistic mode, switched on as notebook 15 does; the restored database must not wait its reboot delay
    control.set_timing(True, {"rds_reboot": 3600, "iam_propagation": 2}, cloud.home)
    made["trail"] = [(e["EventId"], e["EventName"]) for e in c("cloudtrail").lookup_events(MaxResults=50)["Events"]]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "last", "Value": "acknowledged"}])  # the last 2xx before the kill
    return made


def _events_metrics(cw, home, rule: str) -> dict:
    """EventBridge's AWS/Events data points for ``rule``, summed: {metric: sum} (empty until all three arrived)."""
    now = dt.datetime.fromisoformat(control.lab_clock(home)["now"])
    sums = {}
    for name in ("TriggeredRules", "Invocations", "FailedInvocations"):
        points = cw.get_metric_statistics(Namespace="AWS/Events", MetricName=name, Statistics=["Sum"], Period=60,
                                          Dimensions=[{"Name": "RuleName", "Value": rule}],
                                          StartTime=now - dt.timedelta(days=1), EndTime=now + dt.timedelta(hours=1))
        sums[name] = sum(p["Sum"] for p in points["Datapoints"])
    return sums if all(sums.values()) else {}


def _miss_two_days(home, offset: float) -> str:
    """As if the cloud had been down 30 hours: the late rule's next instant is 30 hours ago (lab time)."""
    path = home / "state" / "services" / "events.json"
    saved = json.loads(path.read_text())
    arn = next(a for a in saved["schedules"] if a.endswith("/state-late"))
    missed = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=offset) - dt.timedelta(hours=30)
    saved["schedules"][arn] = ["rate(12 hours)", missed.isoformat()]
    path.write_text(json.dumps(saved))
    return missed.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def crashed(tmp_path_factory):
    """The lab above, its daemon killed right after the last acknowledged request, started again."""
    home = tmp_path_factory.mktemp("state-home")
    port = free_port()
    cloud = Cloud(home, control.start_cloud(port=port, home=home))
    try:
        made = _build(cloud)
        before = cloud.status
        os.kill(before.pid, signal.SIGKILL)  # the daemon only: its servers and the instance's app keep running
        psutil.Process(before.pid).wait(10)
        made["first_missed"] = _miss_two_days(home, 3600)
        started = time.monotonic()
        cloud = Cloud(home, control.start_cloud(port=port, home=home))
        made.update(old_cloud_id=before.cloud_id, start_seconds=time.monotonic() - started)
        print(f"start after the crash: {made['start_seconds']:.1f} s")
        yield cloud, made
    finally:
        stop_test_cloud(cloud)


def test_nothing_of_the_crashed_daemon_keeps_running_and_each_database_has_one_server(crashed):
    cloud, made = crashed
    assert not find_marked(CLOUD_MARKER, made["old_cloud_id"])
    assert not any(p.exists() for p in faketime_shared_files(made["old_cloud_id"]))
    datadirs = [a for p in psutil.process_iter(["cmdline"]) for a in (p.info["cmdline"] or [])
                if a.startswith("--datadir=") and str(cloud.home) in a]
    assert sorted(datadirs) == [f"--datadir={cloud.home / 'rds' / 'state-db'}"], datadirs  # the stopped one: none


def test_ec2(crashed):
    cloud, made = crashed
    ec2 = cloud.client("ec2")
    vpc = ec2.describe_vpcs(VpcIds=[made["vpc"]])["Vpcs"][0]
    assert {"Key": "changed", "Value": "yes"} in vpc["Tags"] and {"Key": "last", "Value": "acknowledged"} in vpc["Tags"]
    assert not ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [made["gone_group"]]}])[
        "SecurityGroups"]
    assert ec2.describe_security_groups(GroupIds=[made["db_group"]])["SecurityGroups"][0]["IpPermissions"][0][
        "FromPort"] == 3306
    assert [a["PublicIp"] for a in ec2.describe_addresses()["Addresses"]] == [made["eip"]]
    instances = {i["InstanceId"]: i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    assert instances[made["stopped"]]["State"]["Name"] == "stopped", "a stopped instance stays stopped"
    running = instances[made["running"]]
    assert running["State"]["Name"] == "running" and running["PublicIpAddress"] == made["public_ip"]
    disk = cloud.home / "ec2" / made["running"]
    assert (disk / "root" / "file.txt").read_text() == "kept\n", "files written on the instance are kept"
    assert (disk / "root" / "user-data.log").read_text() == "ran\n", "user data runs once per instance, not at a reboot"
    assert (disk / "units.log").read_text() == "started\nstarted\n", "the enabled unit started again at the reboot"
    acls = {a["NetworkAclId"]: a for a in ec2.describe_network_acls(Filters=[{"Name": "vpc-id",
                                                                             "Values": [made["vpc"]]}])["NetworkAcls"]}
    assert made["gone_acl"] not in acls
    acl = acls[made["acl"]]
    assert {"Key": "Name", "Value": "state-acl"} in acl["Tags"]
    assert [(a["NetworkAclAssociationId"], a["SubnetId"]) for a in acl["Associations"]] == [
        (made["acl_association"], made["acl_subnet"])]
    entries = sorted((e["RuleNumber"], e["Egress"], e["RuleAction"], e["CidrBlock"], e.get("PortRange", {}).get("From"))
                     for e in acl["Entries"])
    assert entries == [(100, False, "allow", "10.0.0.0/8", 443), (110, False, "deny", "10.1.0.0/16", 8080),
                       (32767, False, "deny", "0.0.0.0/0", None), (32767, True, "deny", "0.0.0.0/0", None)], entries


def test_iam_and_sts(crashed):
    cloud, made = crashed
    iam = cloud.client("iam")
    assert "state-user" in [u["UserName"] for u in iam.list_users()["Users"]]
    assert "state-gone-user" not in [u["UserName"] for u in iam.list_users()["Users"]]
    assert iam.list_user_policies(UserName="state-user")["PolicyNames"] == ["read"]
    key = made["user_key"]
    who = cloud.client("sts", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    assert who.get_caller_identity()["Arn"].endswith(":user/state-user"), "a user's key still signs"
    session = made["session"]
    assumed = cloud.client("sts", aws_access_key_id=session["AccessKeyId"],
                           aws_secret_access_key=session["SecretAccessKey"], aws_session_token=session["SessionToken"])
    assert "assumed-role/state-session-role/kept" in assumed.get_caller_identity()["Arn"], "a role session still works"


def test_rds(crashed):
    cloud, made = crashed
    rds = cloud.client("rds")
    dbs = {d["DBInstanceIdentifier"]: d for d in rds.describe_db_instances()["DBInstances"]}
    assert dbs["state-db-stopped"]["DBInstanceStatus"] == "stopped", "a stopped database stays stopped"
    db = dbs["state-db"]
    assert db["DBInstanceStatus"] == "available" and db["Endpoint"] == made["db_endpoint"]
    assert {"Key": "changed", "Value": "yes"} in rds.list_tags_for_resource(ResourceName=db["DBInstanceArn"])["TagList"]
    with _db(db["Endpoint"]) as conn, conn.cursor() as cur:  # through the restored endpoint
        cur.execute("SELECT note FROM kept WHERE id = 1")
        assert cur.fetchone() == ("committed",), "a committed row survives the engine's kill (InnoDB recovery)"
    assert [g["DBSubnetGroupName"] for g in rds.describe_db_subnet_groups()["DBSubnetGroups"]] == ["state"]
    messages = [e["Message"] for e in rds.describe_events(SourceIdentifier="state-db", SourceType="db-instance",
                                                           Duration=600)["Events"]]
    assert "DB instance restarted." in messages, messages


def test_secretsmanager(crashed):
    cloud, made = crashed
    sm = cloud.client("secretsmanager")
    assert sm.get_secret_value(SecretId="state-secret")["SecretString"] == "two"
    versions = {v["VersionId"]: v["VersionStages"] for v in sm.list_secret_version_ids(SecretId="state-secret")["Versions"]}
    assert versions == {made["secret_v1"]: ["AWSPREVIOUS"], made["secret_v2"]: ["AWSCURRENT"]}
    assert [s["Name"] for s in sm.list_secrets()["SecretList"]] == ["state-secret"]


def test_ssm(crashed):
    cloud, made = crashed
    ssm = cloud.client("ssm")
    parameter = ssm.get_parameter(Name="/state/p")["Parameter"]
    assert (parameter["Value"], parameter["Version"]) == ("two", 2)
    assert [p["Name"] for p in ssm.describe_parameters()["Parameters"]] == ["/state/p"]
    invocation = ssm.get_command_invocation(CommandId=made["command"], InstanceId=made["running"])
    assert invocation["Status"] == "Success"


def test_lambda(crashed):
    cloud, made = crashed
    lam = cloud.client("lambda")
    config = lam.get_function(FunctionName="state-fn")["Configuration"]
    assert (config["MemorySize"], config["Environment"]["Variables"]) == (256, {"CHANGED": "yes"})
    assert lam.get_alias(FunctionName="state-fn", Name="live")["FunctionVersion"] == made["fn_version"]
    assert "s3.amazonaws.com" in lam.get_policy(FunctionName="state-fn")["Policy"]
    assert "state-gone-fn" not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    answer = lam.invoke(FunctionName="state-fn:live", LogType="Tail")
    assert json.loads(answer["Payload"].read()) == "from the layer", "the layer's zip is kept"
    assert [v["Version"] for v in lam.list_layer_versions(LayerName="state-layer")["LayerVersions"]] == [1]
    assert "Init Duration" in base64.b64decode(answer["LogResult"]).decode(), "a restart is a cold start"


def test_logs_and_cloudwatch(crashed):
    cloud, made = crashed
    logs, cw = cloud.client("logs"), cloud.client("cloudwatch")
    groups = {g["logGroupName"]: g for g in logs.describe_log_groups(logGroupNamePrefix="/state")["logGroups"]}
    assert list(groups) == ["/state/kept"] and groups["/state/kept"]["retentionInDays"] == 7
    lines = logs.get_log_events(logGroupName="/state/kept", logStreamName="s")["events"]
    assert [e["message"] for e in lines] == ["kept line"]
    assert [a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]] == ["state-alarm"]
    assert cw.list_metrics(Namespace="State")["Metrics"][0]["MetricName"] == "kept"
    assert _events_metrics(cw, cloud.home, "state-hourly") == made["events_metrics"] == {
        "TriggeredRules": 1.0, "Invocations": 1.0, "FailedInvocations": 1.0}, "EventBridge's metrics are kept"


def test_s3(crashed):
    cloud, made = crashed
    s3 = cloud.client("s3")
    objects = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket="state-bucket")["Contents"]}
    assert objects == {"changed.txt": made["etag"], "big.bin": made["big_etag"]}
    assert s3.get_object(Bucket="state-bucket", Key="changed.txt")["Body"].read() == b"second"


def test_events_and_the_schedules_missed_while_down(crashed):
    cloud, made = crashed
    events = cloud.client("events")
    rules = {r["Name"]: r["State"] for r in events.list_rules()["Rules"]}
    assert rules == {"state-rule": "ENABLED", "state-disabled": "DISABLED", "state-late": "ENABLED",
                     "state-hourly": "ENABLED"}
    assert events.list_targets_by_rule(Rule="state-rule")["Targets"][0]["Id"] == "fn"
    first = dt.datetime.strptime(made["first_missed"], "%Y-%m-%dT%H:%M:%SZ")
    instants = [(first + dt.timedelta(seconds=PERIOD * n)).strftime("%Y-%m-%dT%H:%M:%SZ") for n in range(3)]

    def late_firings() -> list:
        firings = [f for f in control.schedule_history(cloud.home) if f["rule"] == "state-late"]
        return firings if len(firings) >= 5 else []

    firings = until(late_firings, 90, 0.2, message="the missed instants to be handled")
    by = {(f["time"], (f.get("target") or "").rsplit(":", 1)[-1], f["status"]) for f in firings}
    assert (instants[0], "", "dropped") in by, firings  # 30 h old: older than any target's maximum age
    young = [f for f in firings if f["time"] in instants[1:] and f["status"] == "ok"]
    assert len(young) == 3, firings  # 18 h and 6 h old: delivered late to "young"; 6 h old to "strict" too
    assert sum(f["status"] == "dropped" and f["time"] == instants[1] for f in firings) == 1, firings  # strict: 18 h
    assert all(json.loads(f["result"])["time"] == f["time"] for f in young), "each late event carries its own time"


def test_cloudtrail_and_the_lab_clock(crashed):
    cloud, made = crashed
    trail = cloud.client("cloudtrail")
    for event_id, name in made["trail"]:  # each event of the history, by its id, as it was
        found = trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": event_id}])
        assert [e["EventName"] for e in found["Events"]] == [name], event_id
    assert control.lab_clock(cloud.home)["offset_seconds"] >= 3660, "the lab clock keeps its offset"


def test_realistic_mode_is_kept_and_a_restart_is_not_an_rds_reboot(crashed):
    cloud, made = crashed
    assert control.cloud_timing(cloud.home) == {"realistic": True, "delays": {
        "rds_reboot": 3600.0, "rds_create": 60.0, "iam_propagation": 2.0, "endpoint_create": 60.0}}
    # the restored database came back with the start (its engine restarted: test_rds), not after rds_reboot: the
    # cloud's own restart is not a RebootDBInstance (on AWS the instance never went down); waiting for it would
    # have held the start until control's patience ran out
    assert made["start_seconds"] < control.SETTLE_SECONDS
    status = cloud.client("rds").describe_db_instances(DBInstanceIdentifier="state-db")["DBInstances"][0]
    assert status["DBInstanceStatus"] == "available"


def test_scheduler_schedules(crashed):
    """EventBridge Scheduler's schedules as they were (moto's scheduler backend and each one's next instant)."""
    cloud, _made = crashed
    scheduler = cloud.client("scheduler")
    states = {s["Name"]: s["State"] for s in scheduler.list_schedules()["Schedules"]}
    assert states == {"state-schedule": "ENABLED", "state-schedule-off": "DISABLED"}
    firings = [f for f in control.advance_clock(2 * DAY, cloud.home)["firings"] if "schedule" in f]
    assert [(f["schedule"], f["status"]) for f in firings] == [("state-schedule", "ok")] * 2, firings
    assert all(json.loads(f["result"])["time"] == f["time"] for f in firings)
