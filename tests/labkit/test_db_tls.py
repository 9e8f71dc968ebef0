"""The Lambdas reach RDS over verified TLS (issue 13 item 8): the local RDS serves a certificate for its endpoint
signed by the cloud's RDS CA, the functions carry the CA bundle, and a server the bundle does not vouch for, or
a name the certificate does not carry, is refused with the TLS error itself."""
from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from pathlib import Path

import pytest
from cryptography import x509

from labkit import functions, iam, secretsmanager
from labkit.localcloud import control
from labkit.localcloud.rds import engine as rds_engine
from labkit.localcloud.rds import tls as rds_tls

ORDERS_DB = Path(__file__).resolve().parents[2] / "lambda_code" / "shared" / "orders_db.py"


def _orders_db():
    """The Lambdas' shared module, as packaged (it sits beside lambda_function.py, not in a package)."""
    spec = importlib.util.spec_from_file_location("orders_db_under_test", ORDERS_DB)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _rds_health(provisioned) -> dict:
    return control.cloud_request("GET", "/_labkit/health", home=provisioned.home)["services"]["rds"]


def test_the_validator_logs_in_over_tls_with_the_packaged_bundle(provisioned):
    """With ``REQUIRE SSL`` on the master user, only a TLS login gets in: the deployed validator still does."""
    lab = provisioned.lab
    bundle = lab.target.db_ca_bundle()
    assert x509.load_pem_x509_certificate(bundle).extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    deployed = lab.client("lambda").get_function(FunctionName=iam.VALIDATOR_FUNCTION)["Configuration"]
    assert deployed["CodeSha256"] == functions._sha(functions.package_function("order_validator", bundle))
    assert deployed["Architectures"] == [functions.ARCHITECTURE]
    user = secretsmanager.read_secret(lab)["username"]
    conn = provisioned.db_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("ALTER USER %s@'%%' REQUIRE SSL", (user,))
            cur.execute("SELECT id FROM information_schema.PROCESSLIST WHERE user = %s AND id <> CONNECTION_ID()",
                        (user,))
            for (thread,) in cur.fetchall():  # a warm validator's connection: it must log in again
                cur.execute(f"KILL {int(thread)}")
        result = functions.invoke(lab, iam.VALIDATOR_FUNCTION, {"find_order_id": str(uuid.uuid4())})
        assert result.function_error is None, result.payload
        assert result.payload["status"] == "not_found"
    finally:
        with conn.cursor() as cur:
            cur.execute("ALTER USER %s@'%%' REQUIRE NONE", (user,))
        conn.close()
    assert all(instance["tls"] for instance in _rds_health(provisioned)["instances"].values())


def test_a_function_with_another_ca_is_refused_with_the_tls_error(provisioned, tmp_path):
    """A function whose bundle is not the one that signed the server (say, another region's) fails to connect,
    and its error is the certificate verification failure, not a misleading "could not be reached"."""
    lab = provisioned.lab
    stranger, _key = rds_tls.ensure_ca(tmp_path / "another-ca")
    lam = lab.client("lambda")
    lam.create_function(FunctionName="tls-wrong-ca", Runtime=functions.RUNTIME,
                        Role=lab.client("iam").get_role(RoleName=iam.VALIDATOR_ROLE)["Role"]["Arn"],
                        Handler="lambda_function.lambda_handler", Timeout=30, MemorySize=256,
                        Code={"ZipFile": functions.package_function("order_validator", stranger.read_bytes())},
                        Layers=[functions.ensure_layer(lab)], VpcConfig=functions.vpc_config(lab),
                        Environment={"Variables": {"DB_SECRET_NAME": iam.SECRET_NAME}})
    try:
        lam.get_waiter("function_active_v2").wait(FunctionName="tls-wrong-ca")
        result = functions.invoke(lab, "tls-wrong-ca", {"find_order_id": str(uuid.uuid4())})
        assert result.function_error == "Unhandled"
        assert result.payload["errorType"] == "DatabaseError"
        assert "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed" in result.payload["errorMessage"]
        assert "failed TLS verification against rds-ca-bundle.pem" in result.payload["errorMessage"]
    finally:
        lam.delete_function(FunctionName="tls-wrong-ca")


def test_the_certificate_names_the_endpoint_only(provisioned, tmp_path):
    """Right CA, wrong name: the server process's own address is not the endpoint, so verification refuses it."""
    orders_db, lab = _orders_db(), provisioned.lab
    secret = secretsmanager.read_secret(lab)
    bundle = tmp_path / "rds-ca-bundle.pem"
    bundle.write_bytes(lab.target.db_ca_bundle())
    port = next(iter(_rds_health(provisioned)["instances"].values()))["port"]
    elsewhere = json.dumps({**secret, "host": "127.0.0.1", "port": port})
    with pytest.raises(orders_db.DatabaseError, match="IP address mismatch, certificate is not valid for '127.0.0.1'"):
        orders_db.Database("order-db-secret", lambda _id: elsewhere, ca_bundle=bundle).connection()
    with pytest.raises(orders_db.DatabaseError, match="bundle missing.pem is not packaged beside orders_db.py"):
        orders_db.Database("order-db-secret", lambda _id: elsewhere, ca_bundle=tmp_path / "missing.pem").connection()


def test_the_master_user_has_the_engines_login_plugin(provisioned):
    """MySQL 8.4 (RDS) logs the master user in with caching_sha2_password; a MariaDB server has no server side of
    it, so there the user has MariaDB's default plugin."""
    flavour = _rds_health(provisioned)["flavour"]
    with provisioned.db_connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT plugin FROM mysql.user WHERE user = %s", (secretsmanager.read_secret(provisioned.lab)["username"],))
        assert cur.fetchall() == ((rds_engine.LOGIN_PLUGINS[flavour],),)
