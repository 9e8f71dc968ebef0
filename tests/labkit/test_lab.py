"""labkit against the local cloud: every step, idempotence, checks, the order path, teardown."""
from __future__ import annotations

import json
import re
import urllib.request

import pytest

from labkit import (
    CheckFailed,
    StepError,
    checks,
    compute,
    database,
    functions,
    iam,
    network,
    schedule,
    secretsmanager,
    storage,
    teardown,
)
from labkit.localcloud import control
from labkit.localcloud.procs import INSTANCE_MARKER, find_marked
from labkit.steps import STEPS, run_step


def _tags(pairs) -> dict:
    return {p["Key"]: p["Value"] for p in pairs or []}


def _inventory(lab) -> list[tuple[str, ...]]:
    """Every resource of the lab (and every rule, route, target, permission and version inside one), straight
    from describe/list calls by tag: not through labkit's find-or-create code."""
    ec2, rds, lam, events = lab.client("ec2"), lab.client("rds"), lab.client("lambda"), lab.client("events")
    iam_client, tag = lab.client("iam"), lab.tag_filter()
    items: list[tuple[str, ...]] = [("vpc", v["VpcId"]) for v in ec2.describe_vpcs(Filters=tag)["Vpcs"]]
    items += [("subnet", s["SubnetId"]) for s in ec2.describe_subnets(Filters=tag)["Subnets"]]
    items += [("igw", g["InternetGatewayId"]) for g in ec2.describe_internet_gateways(Filters=tag)["InternetGateways"]]
    for table in ec2.describe_route_tables(Filters=tag)["RouteTables"]:
        items.append(("route table", table["RouteTableId"]))
        items += [("route", table["RouteTableId"], str(r.get("DestinationCidrBlock"))) for r in table["Routes"]]
        items += [("association", a["RouteTableAssociationId"]) for a in table.get("Associations", [])]
    for group in ec2.describe_security_groups(Filters=tag)["SecurityGroups"]:
        items.append(("security group", group["GroupId"]))
        items += [("ingress", group["GroupId"], str(p.get("FromPort")), source)
                  for p in group["IpPermissions"]
                  for source in [g["GroupId"] for g in p.get("UserIdGroupPairs", [])] +
                  [r["CidrIp"] for r in p.get("IpRanges", [])]]
    vpc_ids = [i[1] for i in items if i[0] == "vpc"]
    items += [("endpoint", e["VpcEndpointId"]) for e in ec2.describe_vpc_endpoints(
        Filters=[{"Name": "vpc-id", "Values": vpc_ids}])["VpcEndpoints"] if e["State"].lower() != "deleted"]
    items += [("instance", i["InstanceId"]) for r in ec2.describe_instances(Filters=[*tag, {
        "Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])["Reservations"]
              for i in r["Instances"]]
    items += [("db", d["DbiResourceId"]) for d in rds.describe_db_instances()["DBInstances"]
              if _tags(d.get("TagList")).get("lab") == lab.name]
    items += [("db subnet group", g["DBSubnetGroupName"]) for g in rds.describe_db_subnet_groups()["DBSubnetGroups"]
              if _tags(rds.list_tags_for_resource(ResourceName=g["DBSubnetGroupArn"])["TagList"]).get("lab") == lab.name]
    for fn in lam.list_functions()["Functions"]:
        if lam.list_tags(Resource=fn["FunctionArn"])["Tags"].get("lab") == lab.name:
            items.append(("function", fn["FunctionName"], fn["CodeSha256"]))
            items += [("version", fn["FunctionName"], v["Version"])
                      for v in lam.list_versions_by_function(FunctionName=fn["FunctionName"])["Versions"]]
            if fn["FunctionName"] == iam.REPORT_FUNCTION:
                policy = json.loads(lam.get_policy(FunctionName=iam.REPORT_FUNCTION)["Policy"])
                items += [("permission", s["Sid"]) for s in policy["Statement"]]
    items += [("layer version", v["LayerVersionArn"]) for layer in lam.list_layers()["Layers"]
              if layer["LayerName"].startswith(lab.name)
              for v in lam.list_layer_versions(LayerName=layer["LayerName"])["LayerVersions"]]
    for role in iam_client.list_roles()["Roles"]:
        if _tags(iam_client.list_role_tags(RoleName=role["RoleName"])["Tags"]).get("lab") == lab.name:
            items.append(("role", role["RoleId"]))
            items += [("attached", role["RoleName"], p["PolicyArn"]) for p in
                      iam_client.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]]
    items += [("instance profile", p["InstanceProfileId"]) for p in iam_client.list_instance_profiles()[
        "InstanceProfiles"] if _tags(p.get("Tags")).get("lab") == lab.name]
    items += [("secret", s["ARN"]) for s in lab.client("secretsmanager").list_secrets()["SecretList"]
              if _tags(s.get("Tags")).get("lab") == lab.name]
    items += [("bucket", b["Name"]) for b in lab.client("s3").list_buckets()["Buckets"]
              if b["Name"].startswith(f"{lab.name}-")]
    for rule in events.list_rules(NamePrefix=lab.name)["Rules"]:
        items.append(("rule", rule["Arn"]))
        items += [("target", rule["Name"], t["Id"]) for t in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]]
    return sorted(items)


def test_all_checks_pass(provisioned):
    frame = checks.all_checks(provisioned.lab)
    assert frame["passed"].all(), frame[~frame["passed"]].to_string()
    assert len(frame) >= 50


def _revoke_rds_rule_from_ec2(lab):
    ec2, groups = lab.client("ec2"), network.security_group_ids(lab)
    rds = ec2.describe_security_groups(GroupIds=[groups["rds"]])["SecurityGroups"][0]
    rule = next(p for p in rds["IpPermissions"] if p.get("FromPort") == 3306)
    pairs = [pair for pair in rule["UserIdGroupPairs"] if pair["GroupId"] == groups["ec2"]]
    ec2.revoke_security_group_ingress(GroupId=groups["rds"], IpPermissions=[{**rule, "UserIdGroupPairs": pairs}])
    return lambda: run_step(lab, 3)


def _delete_secret(lab):
    sm = lab.client("secretsmanager")
    saved = json.loads(sm.get_secret_value(SecretId=iam.SECRET_NAME)["SecretString"])  # never printed
    sm.delete_secret(SecretId=iam.SECRET_NAME, ForceDeleteWithoutRecovery=True)

    def restore():  # as the series left it: step 4's version (the master credentials), then step 9's, whose
        # previous version task 9 reads (rebuilt, not read: a read of it would be that task done)
        step_4 = {key: saved[key] for key in ("engine", "password", "username")}
        sm.create_secret(Name=iam.SECRET_NAME, SecretString=json.dumps(step_4, sort_keys=True), Tags=lab.tags)
        run_step(lab, 9)
    return restore


def _remove_schedule_target(lab):
    lab.client("events").remove_targets(Rule=schedule.rule_name(lab), Ids=[iam.REPORT_FUNCTION])
    return lambda: run_step(lab, 13)


def _remove_bucket_encryption(lab):
    lab.client("s3").delete_bucket_encryption(Bucket=storage.bucket_name(lab))
    return lambda: run_step(lab, 11)


def _drop_public_route(lab):
    ec2 = lab.client("ec2")
    table = ec2.describe_route_tables(Filters=[*lab.tag_filter(), {"Name": "tag:Name",
                                                                    "Values": [f"{lab.name}-public-rt"]}])["RouteTables"][0]
    ec2.delete_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock="0.0.0.0/0")
    return lambda: run_step(lab, 1)


@pytest.mark.parametrize("step,check,break_it", [
    (1, "public route 0.0.0.0/0 -> internet gateway", _drop_public_route),
    (3, "RDS group allows 3306 only from the EC2 and Lambda groups", _revoke_rds_rule_from_ec2),
    (9, "secret has password", _delete_secret),
    (11, "default encryption", _remove_bucket_encryption),
    (13, f"target {iam.REPORT_FUNCTION}", _remove_schedule_target),
], ids=["public-route", "rds-rule", "secret", "bucket-encryption", "schedule-target"])
def test_a_broken_resource_fails_the_check_that_names_it(provisioned, step, check, break_it):
    lab = provisioned.lab
    assert checks.step_checks(lab, step)["passed"].all()
    repair = break_it(lab)
    try:
        frame = checks.step_checks(lab, step)
        assert check in set(frame.loc[~frame["passed"], "check"]), frame.to_string()
        with pytest.raises(CheckFailed, match=re.escape(check)):
            checks.require_passed(step, frame)
    finally:
        repair()
    frame = checks.step_checks(lab, step)
    assert frame["passed"].all(), frame.to_string()  # re-running the step repaired it


def test_a_missing_created_at_index_fails_step_6(provisioned):
    """Step 6 reads the table's columns and its created_at index in one command on the instance."""
    lab, conn = provisioned.lab, provisioned.db_connection()
    with conn.cursor() as cur:
        cur.execute("DROP INDEX idx_orders_created_at ON orders")
    try:
        frame = checks.step_checks(lab, 6)
        assert list(frame.loc[~frame["passed"], "check"]) == ["index on created_at"], frame.to_string()
    finally:
        with conn.cursor() as cur:
            cur.execute("CREATE INDEX idx_orders_created_at ON orders (created_at)")
        conn.close()
    assert checks.step_checks(lab, 6)["passed"].all()


def test_a_failed_command_reports_its_exit_code_and_output(provisioned):
    with pytest.raises(StepError, match=r"ended Failed \(exit code 3\)[\s\S]*broken on purpose"):
        compute.run_on_instance(provisioned.lab, "echo 'broken on purpose' >&2; exit 3", step="test")
    assert compute.run_on_instance(provisioned.lab, "echo fine").strip() == "fine"


def test_up_twice_gives_the_same_resources(provisioned):
    lab = provisioned.lab
    before = _inventory(lab)
    kinds = {item[0] for item in before}
    assert {"vpc", "subnet", "route", "ingress", "endpoint", "instance", "db", "function", "layer version", "role",
            "instance profile", "secret", "bucket", "rule", "target", "permission"} <= kinds, kinds
    for number in STEPS:
        run_step(lab, number)
    after = _inventory(lab)
    assert after == before, {"new": sorted(set(after) - set(before)), "gone": sorted(set(before) - set(after))}


def test_an_order_through_the_deployed_app_reaches_the_table(provisioned):
    url = compute.app_url(provisioned.lab)
    request = urllib.request.Request(url + "api/orders", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"customer_name": "Grace", "product": "Compiler",
                                                      "quantity": 1, "amount": "99.95"}).encode())
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        order_id = json.loads(response.read())["order_id"]
    orders = database.orders_frame(provisioned.lab)
    row = orders[orders["order_id"] == order_id]
    assert len(row) == 1 and row.iloc[0]["customer_name"] == "Grace" and row.iloc[0]["amount"] == 99.95


def test_secret_never_shows_the_password(provisioned):
    password = secretsmanager.read_secret(provisioned.lab)["password"]
    shown = secretsmanager.secret_frame(provisioned.lab).to_string()
    assert password not in shown and "********" in shown


def test_scheduled_report_lands_in_s3(provisioned):
    firings = schedule.run_scheduled_report(provisioned.lab, hours=24)
    assert list(firings["status"]) == ["ok"]
    key = firings.iloc[0]["key"]
    assert key in set(storage.reports_frame(provisioned.lab)["key"])


def test_least_privilege_policies_name_only_the_labs_resources(provisioned):
    lab = provisioned.lab
    report = iam.least_privilege_policy(lab, iam.REPORT_ROLE)
    resources = [s["Resource"] for s in report["Statement"]]
    assert f"arn:aws:s3:::{storage.bucket_name(lab)}/*" in resources
    assert any(r.endswith(f":secret:{iam.SECRET_NAME}-*") for r in resources)
    ec2 = iam.least_privilege_policy(lab, iam.EC2_ROLE)
    assert {a for s in ec2["Statement"] for a in s["Action"]} == {"secretsmanager:GetSecretValue",
                                                                  "lambda:InvokeFunction"}


def test_switching_to_least_privilege_and_back_keeps_everything_working(provisioned):
    from labkit import Lab

    lab = provisioned.lab
    same = {"target": "local", "name": lab.name, "cloud_port": lab.config.cloud_port, "app_port": lab.config.app_port,
                "home": lab.config.home}
    strict = Lab(policies="least-privilege", **same)
    try:
        for number in (5, 10, 12):
            run_step(strict, number)
        frame = iam.roles_frame(strict)
        assert set(frame["inline policies"]) == {"orders-lab-least-privilege"}
        assert frame.set_index("role").loc[iam.EC2_ROLE, "managed policies"] == "AmazonSSMManagedInstanceCore"
        result = functions.invoke(strict, iam.VALIDATOR_FUNCTION, {"customer_name": "Lee", "product": "Pi",
                                                                   "quantity": 3, "amount": 3.14})
        assert result.payload["status"] == "accepted"
        # The mode is the lab's: a Lab built without `policies` (as every notebook builds it) keeps it.
        assert iam.policy_mode(lab) == "least-privilege"
        for number in (5, 10, 12):
            run_step(lab, number)
        assert set(iam.roles_frame(lab)["inline policies"]) == {"orders-lab-least-privilege"}
    finally:
        managed = Lab(policies="managed", **same)
        for number in (5, 10, 12):
            run_step(managed, number)
    frame = iam.roles_frame(lab).set_index("role")
    assert iam.policy_mode(lab) == "managed" and "SecretsManagerReadWrite" in frame.loc[iam.EC2_ROLE, "managed policies"]
    # beside the tutorial's managed policies, what each role really needs
    assert "ec2:DescribeSubnets" in frame.loc[iam.VALIDATOR_ROLE, "really needs"]
    assert "secretsmanager:GetSecretValue" in frame.loc[iam.EC2_ROLE, "really needs"]


def test_failed_step_names_the_step_and_the_fix(provisioned, tmp_path):
    from labkit import Lab, StepError

    empty = Lab(target="local", name="never-built", cloud_port=provisioned.lab.config.cloud_port,
                home=provisioned.lab.config.home)
    with pytest.raises(StepError) as caught:
        run_step(empty, 2)
    assert "Step 1" in str(caught.value) or "step 1" in str(caught.value)
    assert "How to fix" in str(caught.value)


def test_a_second_lab_keeps_off_the_first_labs_resources(provisioned):
    from labkit import Lab, StepError

    lab = Lab(target="local", name="short-lived", cloud_port=provisioned.lab.config.cloud_port,
              home=provisioned.lab.config.home)
    for number in (1, 3):
        run_step(lab, number)
    with pytest.raises(StepError, match="belongs to lab 'test-lab'") as caught:
        run_step(lab, 2)  # the tutorial's subnet group name is the other lab's
    assert "labkit down --lab test-lab" in str(caught.value)
    left = teardown.delete_everything(lab)
    assert left.empty, left
    assert teardown.delete_everything(lab).empty  # idempotent
    assert not network.network_frame(lab)["id"].tolist()
    assert not network.network_frame(provisioned.lab).empty  # the other lab is untouched


@pytest.mark.tears_down_the_lab
def test_full_teardown_removes_every_resource_and_process(provisioned):
    lab = provisioned.lab
    instance_id = compute.describe_instance(lab)["InstanceId"]
    assert find_marked(INSTANCE_MARKER, instance_id)  # the app service runs
    left = teardown.delete_everything(lab)
    assert left.empty, left.to_string()
    assert not _inventory(lab)
    assert find_marked(INSTANCE_MARKER, instance_id) == []
    health = control.cloud_request("GET", "/_labkit/health", home=provisioned.home)["services"]
    assert health["rds"]["instances"] == {} and health["lambda"]["functions"] == {}
