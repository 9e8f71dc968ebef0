"""Your address: what the console's "My IP" puts in a rule. Locally the cloud answers it (127.0.0.1 for every
process it did not start), on AWS https://checkip.amazonaws.com; a rule for it /32 opens the app to your
computer only, and the reachability table names that rule."""
from __future__ import annotations

import http.server
import threading

import pytest

from labkit import AddressUnknown, ConfigError, Lab, StepError, compute, config, myip, network, paths
from labkit.config import AwsTarget, LabConfig
from tests.helpers import free_port, http_status

OTHER = "203.0.113.7/32"  # a documentation address: never yours


def _app_sources(lab: Lab) -> set[str]:
    group = network.security_group_ids(lab)["ec2"]
    perms = lab.client("ec2").describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    return {r["CidrIp"] for p in perms if p.get("FromPort") == lab.config.app_port for r in p.get("IpRanges", [])}


def _with(lab: Lab, app_cidr: str) -> Lab:
    return Lab(target="local", name=lab.name, cloud_port=lab.config.cloud_port, app_port=lab.config.app_port,
               home=lab.config.home, app_cidr=app_cidr)


def _app_row(lab: Lab) -> dict:
    return paths.reachability_frame(lab, "your computer -> app").iloc[0].to_dict()


def test_my_ip_opens_the_app_to_your_computer_only(provisioned):
    lab = provisioned.lab
    url = compute.app_url(lab) + "healthz"
    assert myip.your_address(lab) == "127.0.0.1"  # the address the local cloud sees your connections come from
    mine = _with(lab, "my-ip")
    try:
        network.create_security_groups(mine)  # step 3 with app_cidr="my-ip": the rule is your address /32 only
        assert _app_sources(lab) == {"127.0.0.1/32"}
        assert http_status(url, 10) == 200
        row = _app_row(mine)
        assert row["allowed"] and row["because"].startswith(f"ec2-app-sg allows tcp {lab.config.app_port} from "
                                                            "127.0.0.1/32;"), row
        group = network.security_group_ids(lab)["ec2"]
        lab.client("ec2").revoke_security_group_ingress(GroupId=group, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": lab.config.app_port, "ToPort": lab.config.app_port,
            "IpRanges": [{"CidrIp": "127.0.0.1/32"}]}])
        assert http_status(url, 0.75) == "timed out"  # at once
        network.create_security_groups(_with(lab, OTHER))  # someone else's address: your computer is dropped
        assert _app_sources(lab) == {OTHER}
        assert http_status(url, 0.75) == "timed out"
        row = _app_row(mine)
        assert not row["allowed"] and row["because"] == (
            f"ec2-app-sg: no inbound rule for tcp {lab.config.app_port} from your computer (127.0.0.1)"), row
    finally:
        network.create_security_groups(lab)  # the default again: "my-ip"
    assert _app_sources(lab) == {"127.0.0.1/32"}
    assert http_status(url, 10) == 200


def test_the_app_is_open_to_your_address_only_by_default(provisioned):
    """The order API has no login and writes to the database: by default (issue 25 item 11) its port admits your
    address /32 only, not 0.0.0.0/0; locally that is 127.0.0.1, where your browser, the tests and a classroom's
    Hub proxy all connect from."""
    lab = provisioned.lab
    assert LabConfig().app_cidr == myip.MY_IP == lab.config.app_cidr
    assert _app_sources(lab) == {"127.0.0.1/32"}
    assert http_status(compute.app_url(lab) + "healthz", 10) == 200
    row = _app_row(lab)
    assert row["allowed"] and row["because"].startswith(f"ec2-app-sg allows tcp {lab.config.app_port} from "
                                                        "127.0.0.1/32;"), row


def test_an_unknown_address_is_said_in_the_table(provisioned, monkeypatch):
    """On AWS without an answer from checkip: only a 0.0.0.0/0 rule is sure to match, and the rows say why."""
    lab = provisioned.lab
    everyone = _with(lab, "0.0.0.0/0")
    network.create_security_groups(everyone)
    try:
        monkeypatch.setattr(myip, "lookup", lambda _lab: (None, "https://checkip.amazonaws.com did not answer"))
        frame = paths.reachability_frame(lab).set_index("path")
        assert frame.loc[f"your computer -> app :{lab.config.app_port}", "allowed"]  # open to 0.0.0.0/0
        because = frame.loc["your computer -> RDS :3306", "because"]
        assert "PubliclyAccessible is false" in because and because.endswith(
            "; https://checkip.amazonaws.com did not answer")
        with pytest.raises(StepError, match="'my-ip'.*did not answer"):  # nothing changed: the rule stays
            network.create_security_groups(_with(lab, "my-ip"))
        assert _app_sources(lab) == {"0.0.0.0/0"}
    finally:
        monkeypatch.undo()
        network.create_security_groups(lab)
    assert _app_sources(lab) == {"127.0.0.1/32"}


class _FakeLab:
    def __init__(self) -> None:
        self.target = AwsTarget(LabConfig(target="aws"))


def test_on_aws_the_address_is_what_checkip_answers_asked_once(monkeypatch):
    asked = []

    class CheckIp(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"198.51.100.23\n")

        def log_message(self, *args) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), CheckIp)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    monkeypatch.setattr(config, "CHECKIP_URL", f"http://127.0.0.1:{server.server_port}/")
    try:
        lab = _FakeLab()
        assert myip.your_address(lab) == "198.51.100.23"
        assert myip.resolve_cidr(lab, "my-ip") == "198.51.100.23/32" and myip.resolve_cidr(lab, OTHER) == OTHER
        assert len(asked) == 1  # once per lab session
    finally:
        server.shutdown()
        server.server_close()


def test_on_aws_no_answer_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(config, "CHECKIP_URL", f"http://127.0.0.1:{free_port()}/")  # nothing listens: refused
    with pytest.raises(AddressUnknown, match="did not tell your address") as caught:
        myip.your_address(_FakeLab())
    assert "app_cidr=" in caught.value.hint


@pytest.mark.parametrize("value,message", [("10.0.0.0/33", "not an IPv4 CIDR"), ("my ip", "not an IPv4 CIDR"),
                                           ("203.0.113.7", "has no prefix length")])
def test_a_bad_cidr_is_refused_at_once(value, message):
    with pytest.raises(ConfigError, match=message):
        LabConfig(app_cidr=value)
    with pytest.raises(ConfigError, match=message):
        LabConfig(ssh_cidr=value)
    assert LabConfig(app_cidr="my-ip", ssh_cidr="my-ip").app_cidr == "my-ip"
