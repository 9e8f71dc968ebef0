"""Issue 15: another program on this computer holds the app's port, and the lab still takes its orders.

The lab's app port (a free port standing in for 5000) is held on the machine's wildcard address, as by another
program or a student's own server, when the instance boots: its app and the front at its public IP are
remapped to free ports, and every URL labkit shows for the app is the one that reaches this lab's instance,
with a note that says why. Released, the port is the app's own again.
"""
from __future__ import annotations

import socket
import uuid

import pytest

from labkit import compute, verify
from tests.helpers import until


def _hold(port: int, seconds: float = 30) -> socket.socket:
    """Another program listening on 0.0.0.0:``port`` (once the stopped instance's front has let it go).

    Bound on 0.0.0.0 on purpose, the deliberate exception to "tests bind only 127.0.0.1": a wildcard holder of
    the app port is the case under test."""
    def bound() -> socket.socket:
        held = socket.socket()
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            held.bind(("0.0.0.0", port))
            held.listen()
        except OSError:
            held.close()
            raise
        held.setblocking(False)
        return held

    return until(bound, seconds, ignoring=(OSError,), message=f"0.0.0.0:{port} bound")


def _shown_by_labkit_status(provisioned, capsys) -> str:
    """What `labkit status --urls` prints for the lab, as from a shell in the lab's folder."""
    from labkit.cli import main

    lab = provisioned.lab
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LABKIT_HOME", str(provisioned.home))
        env.setenv("LABKIT_CLOUD_PORT", str(lab.config.cloud_port))
        env.setenv("LABKIT_APP_PORT", str(lab.config.app_port))
        assert main(["status", "--urls", "--lab", lab.name]) == 0
    return capsys.readouterr().out


def test_an_app_port_held_by_another_program_is_remapped_and_still_takes_this_labs_orders(provisioned, capsys):
    lab, port = provisioned.lab, provisioned.lab.config.app_port
    instance_id = compute.describe_instance(lab)["InstanceId"]
    ec2 = lab.client("ec2")
    ec2.stop_instances(InstanceIds=[instance_id])  # its app stops, its public IP (and the front there) goes
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[instance_id], WaiterConfig={"Delay": 0.5})
    held = _hold(port)
    try:
        compute.launch_instance(lab)  # starts it again: systemd starts the app, which finds its port held
        url = compute.app_url(lab)
        assert f":{port}/" not in url, url
        note = compute.app_note(lab)
        assert f"port {port} is remapped to" in note and "another program" in note, note
        assert note in compute.app_link(lab)
        assert _shown_by_labkit_status(provisioned, capsys) == f"The order app: {url}\n  ({note})\n"
        compute.wait_for_app(lab, url, instance_id, step=8)  # deploy verification goes through the shown URL
        name = f"Held port {uuid.uuid4().hex[:8]}"
        stored = verify.submit_order(lab, {"customer_name": name, "product": "Held port", "quantity": 1,
                                           "amount": "2.50"})  # through compute.app_url, the shown URL
        assert stored.status == 201, stored
        with provisioned.db_connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT customer_name FROM orders WHERE order_id = %s", (stored.body["order_id"],))
            assert cur.fetchall() == ((name,),)  # in this lab's database
        try:
            held.accept()
            raise AssertionError("an order meant for the lab reached the other program")
        except BlockingIOError:
            pass
    finally:
        held.close()
    # Released: the app's next start binds its own port, and the front at the public IP moves back to it.
    compute.run_on_instance(lab, "systemctl restart orders-app", step=8)
    until(lambda: not compute.app_note(lab), 60, 0.25, message="the app back on its own port")
    url = compute.app_url(lab)
    assert url.endswith(f":{port}/") and not compute.app_note(lab), url
    compute.wait_for_app(lab, url, instance_id, step=8)
