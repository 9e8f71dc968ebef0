"""Security defaults of the instance (issue 25 item 11): the app runs as a user of its own, not root, and the
instance's mysql client verifies the database server with the RDS CA bundle (VERIFY_IDENTITY), not TLS
"preferred". The app port's default source (your address /32) is tested in test_your_address.py.

On the local cloud the scripts run for real (the local image: its systemd cannot switch users, which its journal
says); on the aws path, with botocore's Stubber, what is sent is checked."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from botocore.stub import ANY, Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from labkit import Lab, StepError, compute, config, database
from labkit.localcloud.rds import tls as rds_tls


# -- on the local cloud ----------------------------------------------------------------------------------------
def _on_instance(lab: Lab, script: str) -> str:
    return compute.run_on_instance(lab, compute.PRELUDE + script, step="test", read_only=True)


def test_the_app_runs_from_opt_as_a_user_of_its_own(provisioned):
    lab = provisioned.lab
    out = _on_instance(lab, 'readlink "$HOME/orders-app"; stat -c %a "$APP_DIR/orders-app.env"\n'
                            'cat "$ROOT_FS/etc/systemd/system/orders-app.service"\n'
                            'journalctl -u orders-app -n 200 | grep "User=" | tail -1')
    link, mode, *unit = out.splitlines()
    assert link.endswith("/opt/orders-app") and mode == "600"  # the Flask secret key: root's (systemd reads it)
    assert {"User=orders-app", "Group=orders-app", "DynamicUser=yes"} <= set(unit)
    assert f"WorkingDirectory={link}" in unit
    assert "User=orders-app is not applied: the local image runs every process as the local cloud's user" in unit[-1]
    assert compute.app_identity(compute.app_url(lab))  # and the app answers


def _require_ssl(provisioned, on: bool) -> None:
    user = database.describe_db_instance(provisioned.lab)["MasterUsername"]
    with provisioned.db_connection() as conn, conn.cursor() as cur:
        cur.execute(f"ALTER USER %s@'%%' REQUIRE {'SSL' if on else 'NONE'}", (user,))


def test_the_instances_mysql_verifies_the_server(provisioned, monkeypatch, tmp_path):
    lab = provisioned.lab
    script = database._mysql_script(lab, "SELECT 1;")
    assert "--ssl-mode=VERIFY_IDENTITY" in script and "--ssl-verify-server-cert" in script  # MySQL's, MariaDB's
    assert lab.target.db_ca_bundle().decode() in script
    _require_ssl(provisioned, True)
    try:
        assert database.query(lab, "SELECT 1 AS one;")["one"].tolist() == ["1"]  # a TLS login gets in
        stranger, _key = rds_tls.ensure_ca(tmp_path / "another-ca")  # a bundle that does not vouch for the server
        monkeypatch.setattr(lab.target, "db_ca_bundle", lambda region=None: stranger.read_bytes())
        with pytest.raises(StepError, match=r"(?i)certificate|SSL|TLS") as caught:
            database.query(lab, "SELECT 1 AS one;")
        assert "2026" in str(caught.value) or "verify" in str(caught.value).lower()
    finally:
        _require_ssl(provisioned, False)


# -- on the aws path -----------------------------------------------------------------------------------------
def _ca(name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


GLOBAL = {name: _ca(name) for name in (
    "Amazon RDS eu-west-1 Root CA RSA2048 G1", "Amazon RDS eu-west-1 Root CA ECC384 G1",
    "Amazon RDS eu-west-2 Root CA RSA2048 G1", "Amazon RDS us-gov-west-1 Root CA RSA4096 G1",
    "Amazon RDS Root 2019 CA")}


def test_the_instance_gets_the_regions_certificates_only(monkeypatch, tmp_path):
    """RDS's global bundle has every region's authorities (about 160 KB): too much for a command on the instance.
    Its region's, and those naming no region, chain any DB instance of the lab."""
    monkeypatch.setattr(config, "RDS_CA_CACHE", tmp_path / "rds-global-bundle.pem")
    config.RDS_CA_CACHE.write_bytes(b"".join(GLOBAL.values()))
    target = config.AwsTarget(config.LabConfig(target="aws", region="eu-west-1"))
    assert target.db_ca_bundle() == b"".join(GLOBAL.values())  # the Lambdas still carry the whole bundle
    assert target.db_ca_bundle(region="eu-west-1") == b"".join(GLOBAL[n] for n in (
        "Amazon RDS eu-west-1 Root CA RSA2048 G1", "Amazon RDS eu-west-1 Root CA ECC384 G1", "Amazon RDS Root 2019 CA"))
    assert target.db_ca_bundle(region="us-gov-west-1") == b"".join(GLOBAL[n] for n in (
        "Amazon RDS us-gov-west-1 Root CA RSA4096 G1", "Amazon RDS Root 2019 CA"))


INSTANCE = {"InstanceId": "i-0123456789abcdef0", "State": {"Name": "running"}, "PublicIpAddress": "203.0.113.10"}
DB = {"DBInstanceIdentifier": "stub-lab-db", "DBInstanceStatus": "available", "MasterUsername": "admin",
      "Endpoint": {"Address": "stub-lab-db.c1a2b3c4d5e6.eu-west-1.rds.amazonaws.com", "Port": 3306}}


def _sent_script(lab: Lab, call, *rds_answers, instance_looks: int = 1) -> str:
    """What ``call(lab)`` sends to the instance with SendCommand (answered: Success)."""
    sent = {}
    ec2, ssm, rds = lab.client("ec2"), lab.client("ssm"), lab.client("rds")
    with Stubber(ec2) as ec2_stub, Stubber(ssm) as ssm_stub, Stubber(rds) as rds_stub:
        for answer in rds_answers:
            rds_stub.add_response("describe_db_instances", answer)
        for _ in range(instance_looks):
            ec2_stub.add_response("describe_instances", {"Reservations": [{"Instances": [INSTANCE]}]})
        ssm_stub.add_response("send_command", {"Command": {"CommandId": "c0ffee00-1111-2222-3333-444455556666"}},
                              {"InstanceIds": [INSTANCE["InstanceId"]], "DocumentName": "AWS-RunShellScript",
                               "Comment": ANY, "TimeoutSeconds": 60, "Parameters": ANY})
        done = {"CommandId": "c0ffee00-1111-2222-3333-444455556666", "InstanceId": INSTANCE["InstanceId"],
                "Status": "Success", "StatusDetails": "Success", "ResponseCode": 0,
                "StandardOutputContent": "one\n1\n"}
        ssm_stub.add_response("get_command_invocation", done)
        ssm_stub.add_response("get_command_invocation", done)
        ssm.meta.events.register("before-parameter-build.ssm.SendCommand",
                                 lambda params, **_: sent.update(params["Parameters"]))
        call(lab)
        for stub in (ec2_stub, ssm_stub, rds_stub):
            stub.assert_no_pending_responses()
    return sent["commands"][0]


def test_on_aws_the_query_verifies_the_rds_endpoint_with_the_regions_bundle(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "RDS_CA_CACHE", tmp_path / "rds-global-bundle.pem")
    config.RDS_CA_CACHE.write_bytes(b"".join(GLOBAL.values()))
    lab = Lab(target="aws", name="stub-lab", region="eu-west-1")  # a read: no confirmation needed
    lab.target.poll_seconds = 0.04
    script = _sent_script(lab, lambda lab: database.query(lab, "SELECT 1 AS one;"), {"DBInstances": [DB]})
    mysql = next(line for line in script.splitlines() if line.startswith("mysql "))
    assert mysql.startswith('mysql "$@" --host=stub-lab-db.c1a2b3c4d5e6.eu-west-1.rds.amazonaws.com --port=3306')
    assert re.search(r'set -- --ssl-mode=VERIFY_IDENTITY --ssl-ca="\$CA"', script)
    assert GLOBAL["Amazon RDS eu-west-1 Root CA RSA2048 G1"].decode() in script
    assert GLOBAL["Amazon RDS eu-west-2 Root CA RSA2048 G1"].decode() not in script
    assert len(script.encode()) < 16_000  # well within what a command carries


def test_on_aws_the_unit_runs_the_app_as_its_own_user(monkeypatch):
    lab = Lab(target="aws", name="stub-lab", region="eu-west-1", confirm=True)
    lab.target.poll_seconds = 0.04
    monkeypatch.setattr(compute, "wait_for_app", lambda *args, **kwargs: None)  # no app to ask here
    script = _sent_script(lab, compute.deploy_app, instance_looks=3)
    unit = script.split("<<'UNITFILE'\n", 1)[1].split("UNITFILE", 1)[0]
    assert "User=orders-app\nGroup=orders-app\nDynamicUser=yes\n" in unit
    assert "WorkingDirectory=@APP_DIR@\n" in unit and 'APP_DIR="$ROOT_FS/opt/orders-app"' in script
    assert 'ROOT_FS="${HOME%/root}"' in script  # / on the instance: root's home is /root
    assert 'UNIT="$ROOT_FS/etc/systemd/system/orders-app.service"' in script
    assert "umask 077\ncat > \"$ENV_FILE\"" in script  # the secret key: root's alone, read by systemd
