"""What your computer meets at an instance: its security groups decide every port, as on AWS.

A port the groups do not allow drops the SYN (the client's connect() times out); a port they allow and nothing
listens on is refused (the instance's kernel answers RST); a port they allow and the app listens on answers.
The instance's own address (where its wildcard binds land) lets nothing from outside the lab's block in, so it
is no way around the groups.
"""
from __future__ import annotations

import socket

import pymysql
import pytest

from tests.helpers import free_port, http_status, until
from tests.helpers.ec2 import instance_profile, run_command
from tests.helpers.network import allow, ask, lab_vpc, probe_function

APP = "#!/bin/sh\nnohup python3 -m http.server {port} >/dev/null 2>&1 &\necho $! > $HOME/app.pid\n"


def _tcp(address: tuple[str, int], timeout: float = 0.75) -> str:
    """What a plain connect() meets: "connected", "timed out" or the error's name."""
    try:
        socket.create_connection(address, timeout=timeout).close()
        return "connected"
    except TimeoutError:
        return "timed out"
    except OSError as exc:
        return type(exc).__name__


def _mysql(host: str, port: int = 3306) -> str:
    try:
        pymysql.connect(host=host, port=port, user="admin", password="x", connect_timeout=1).close()
        return "connected"
    except pymysql.err.OperationalError as exc:
        return f"{exc.args[0]} {exc.args[1]}"


def _modelled(port: int) -> bool:
    """Whether the cloud can model ``port`` at a public IP on this machine: a non-root user cannot bind a port below
    net.ipv4.ip_unprivileged_port_start, and a program holding 0.0.0.0:port answers it at every address."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _start_app(cloud, app: dict) -> None:
    """(Re)start the app on the instance and wait until it answers at the public IP."""
    url = f"http://{app['public']}:{app['port']}/"
    start = APP.format(port=app["port"]).split("\n", 1)[1]  # only when its process has ended (never twice)
    result = run_command(cloud, app["id"], [f"kill -0 $(cat $HOME/app.pid) 2>/dev/null || {{ {start.strip()}; }}"])
    assert result["Status"] == "Success", result
    until(lambda: http_status(url, 5) == 200, 60)


def _own_address(cloud, instance_id: str) -> str:
    return cloud.request("GET", "/_labkit/health")["services"]["network"]["own_addresses"][instance_id]


@pytest.fixture(scope="module")
def app(cloud):
    """An instance in a public subnet whose app listens on a free port the group opens to the internet."""
    ec2, port = cloud.client("ec2"), free_port()
    net = lab_vpc(ec2, "10.62")
    group = net["sg"]["ec2"]
    allow(ec2, group, port, cidr="0.0.0.0/0")
    instance = ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro", UserData=APP.format(port=port),
        IamInstanceProfile={"Name": instance_profile(cloud.client("iam"), "net-ports-profile")},
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": net["subnet"]["public"], "Groups": [group],
                            "AssociatePublicIpAddress": True}])["Instances"][0]
    url = f"http://{instance['PublicIpAddress']}:{port}/"
    until(lambda: http_status(url, 5) == 200, 60)  # until the server has started
    yield {"id": instance["InstanceId"], "public": instance["PublicIpAddress"], "port": port, "group": group,
           "net": net}
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])


def test_each_port_of_a_public_ip_answers_as_the_group_says(cloud, app):
    """Allowed and listened: answers; allowed and unused: refused; not allowed: the SYN goes unanswered."""
    ec2, public, unused = cloud.client("ec2"), app["public"], free_port()
    assert http_status(f"http://{public}:{app['port']}/", 10) == 200
    if _modelled(22):
        assert _tcp((public, 22)) == "timed out"  # no rule for SSH: dropped, as a student's ssh hangs on AWS
    if _modelled(80):
        assert _tcp((public, 80)) == "timed out"
    if _modelled(3306):
        assert _mysql(public).endswith("(timed out)")  # pymysql's 2003 "... (timed out)"
    allow(ec2, app["group"], unused, cidr="0.0.0.0/0")
    allow(ec2, app["group"], 3306, cidr="0.0.0.0/0")
    try:
        assert _tcp((public, unused)) == "ConnectionRefusedError"  # a rule names it, nothing listens: RST
        if _modelled(3306):
            assert _mysql(public).startswith("2003 ") and "Connection refused" in _mysql(public)
        if _modelled(22):
            assert _tcp((public, 22)) == "timed out"
    finally:
        allow(ec2, app["group"], unused, cidr="0.0.0.0/0", revoke=True)
        allow(ec2, app["group"], 3306, cidr="0.0.0.0/0", revoke=True)
    assert _tcp((public, unused)) == "timed out"  # revoked: dropped again at once
    # A port no rule names and a student would not try is not modelled: refused, whatever the groups say.
    assert _tcp((public, free_port())) == "ConnectionRefusedError"


def test_a_stranger_cannot_reach_the_instances_own_address(cloud, app):
    """The own address (where the app's 0.0.0.0 bind lands) drops every SYN from outside the lab's block, so
    the front (the security groups) is the only way in from your computer; the instance itself, its SSM
    commands and the front still get through."""
    _start_app(cloud, app)
    own = _own_address(cloud, app["id"])
    assert _tcp((own, app["port"])) == "timed out"
    assert http_status(f"http://{app['public']}:{app['port']}/", 10) == 200
    script = ("python3 -c \"import sys, urllib.request as u; print(*[u.urlopen('http://' + h + ':' + sys.argv[1], "
              f"timeout=10).status for h in sys.argv[2:]])\" {app['port']} 127.0.0.1 {own} {app['public']}")
    result = run_command(cloud, app["id"], [script])
    assert result["StandardOutputContent"].split() == ["200", "200", "200"], result
    # A server of this machine on 127.0.0.1 is not on the instance's loopback: refused there, as on AWS.
    with socket.create_server(("127.0.0.1", 0)) as host:
        probe = ("python3 -c \"import socket, sys\ntry: socket.create_connection(('127.0.0.1', int(sys.argv[1])), "
                 f"timeout=5); print('connected')\nexcept OSError as e: print(type(e).__name__)\" {host.getsockname()[1]}")
        result = run_command(cloud, app["id"], [probe])
        assert result["StandardOutputContent"].strip() == "ConnectionRefusedError", result
    # A Lambda worker (on the internet: no VpcConfig) comes from the workers' address of the block: let in.
    fn = probe_function(cloud, "net-ports-to-app", None)
    assert ask(cloud, fn, tcp=[[app["public"], app["port"]]]) == {f"{app['public']}:{app['port']}": "connected"}


def test_an_app_that_stops_is_refused_where_it_answered(cloud, app):
    """The app ends (the group still allows its port): the port is refused, as by the instance's kernel."""
    url = f"http://{app['public']}:{app['port']}/"
    _start_app(cloud, app)
    result = run_command(cloud, app["id"], [  # until it has ended (its listener closed), as a stopped app has
        "pid=$(cat $HOME/app.pid); kill $pid; while kill -0 $pid 2>/dev/null; do sleep 0.05; done"])
    assert result["Status"] == "Success", result
    try:  # the front learns of it from this first attempt, which it resets
        first = http_status(url, 5)
    except ConnectionResetError as exc:  # raised as it is while the response is read
        first = type(exc).__name__
    assert first in ("ConnectionResetError", "RemoteDisconnected", "ConnectionRefusedError"), first
    assert _tcp((app["public"], app["port"])) == "ConnectionRefusedError"


def test_a_port_another_program_holds_is_listed_not_pretended(cloud, app):
    """A program on this machine holding 0.0.0.0:P answers P at every public IP, whatever the groups say (only
    root could prevent it): health lists the port as answered by another program, not as refused or dropped."""
    ec2, port = cloud.client("ec2"), free_port()
    # Bound on 0.0.0.0 on purpose (the exception to "only 127.0.0.1"): a wildcard holder is the case under test.
    with socket.create_server(("0.0.0.0", port)):
        allow(ec2, app["group"], port, cidr="10.0.0.0/8")  # named by a rule (not from you): modelled if it could be
        try:
            network = cloud.request("GET", "/_labkit/health")["services"]["network"]
            reason = network["not_modelled"].get(f"{app['public']}:{port}", "")
            assert reason.startswith("answered by another program on this machine"), network["not_modelled"]
            assert _tcp((app["public"], port)) == "connected"  # the holder answers, as the docs say
        finally:
            allow(ec2, app["group"], port, cidr="10.0.0.0/8", revoke=True)


def test_an_elastic_ip_drops_until_it_reaches_a_running_instance(cloud, app):
    """An Elastic IP with no instance behind it drops every port; associated, it is the instance's public IP;
    released, it is nobody's."""
    ec2 = cloud.client("ec2")
    allocation = ec2.allocate_address(Domain="vpc")
    address = allocation["PublicIp"]
    try:
        if _modelled(3306):
            assert _tcp((address, 3306)) == "timed out"
        allow(ec2, app["group"], 22, cidr="0.0.0.0/0")
        try:
            association = ec2.associate_address(AllocationId=allocation["AllocationId"], InstanceId=app["id"])
            if _modelled(22):
                assert _tcp((address, 22)) == "ConnectionRefusedError"  # allowed now, and no SSH server listens
            if _modelled(80):
                assert _tcp((address, 80)) == "timed out"
            ec2.disassociate_address(AssociationId=association["AssociationId"])
            if _modelled(22):
                assert _tcp((address, 22)) == "timed out"
        finally:
            allow(ec2, app["group"], 22, cidr="0.0.0.0/0", revoke=True)
    finally:
        ec2.release_address(AllocationId=allocation["AllocationId"])
    assert _tcp((address, 22)) == "ConnectionRefusedError"  # nothing holds the address any more
