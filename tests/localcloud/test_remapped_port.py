"""A port that a program outside the lab holds on this machine is remapped, locally only, and said so.

An instance's public IP is an address of the lab's block, but a program that listens on the machine's wildcard
address (``0.0.0.0:5000``) holds that port on every address, the block's included: neither the instance's app
nor the front at its public IP can bind it. The lab still works: the app is bound to a free port of the
instance's own address (the instance itself and the rest of the lab still reach it as its own port), the front
opens on a free port of the public IP, and the cloud's summary lists the mapping, which labkit shows.
"""
from __future__ import annotations

import socket

from labkit.localcloud import control
from tests.helpers import free_port, http_status, until
from tests.helpers.ec2 import instance_profile, run_command
from tests.helpers.network import allow, lab_vpc


def _remapped(cloud, public: str, port: int, seconds: float = 60) -> str:
    """The address your computer reaches ``public``:``port`` at, once the instance listens and the cloud has
    remapped it."""
    return until(lambda: control.remapped_ports(cloud.home).get(f"{public}:{port}"), seconds, 0.25,
                 message=f"{public}:{port} remapped")


def test_a_port_held_outside_the_lab_is_remapped_at_the_public_ip(cloud):
    ec2, port = cloud.client("ec2"), free_port()
    net = lab_vpc(ec2, "10.63")
    allow(ec2, net["sg"]["ec2"], port, cidr="0.0.0.0/0")
    # Bound on 0.0.0.0 on purpose (the exception to "only 127.0.0.1"): a wildcard holder is the case under test.
    held = socket.socket()  # another program on this machine, on every address's port
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.bind(("0.0.0.0", port))
    held.listen()
    held.setblocking(False)
    instance_id = None
    try:
        instance = ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro",
            IamInstanceProfile={"Name": instance_profile(cloud.client("iam"), "remap-app-profile")},
            UserData=f"#!/bin/sh\nnohup python3 -m http.server {port} >/dev/null 2>&1 &\n",  # 0.0.0.0, as apps do
            NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": net["subnet"]["public"], "Groups": [net["sg"]["ec2"]],
                                "AssociatePublicIpAddress": True}])["Instances"][0]
        instance_id, public = instance["InstanceId"], instance["PublicIpAddress"]
        reached = _remapped(cloud, public, port)
        assert reached and reached.startswith(f"{public}:") and reached != f"{public}:{port}", reached
        assert http_status(f"http://{reached}/", 10) == 200  # the instance's server, through the remapped front
        try:
            held.accept()
            raise AssertionError("a connection meant for the instance reached the other program")
        except BlockingIOError:
            pass
        # On the instance its port is its own: its 127.0.0.1:port reaches its server, as on AWS.
        local = run_command(cloud, instance_id, [
            f"python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{port}/').status)\""])
        assert local["StandardOutputContent"] == "200\n", local
        # The app started twice: the second bind of the same port fails as on AWS, never given another port.
        again = run_command(cloud, instance_id, [
            f"python3 -c \"import socket; s = socket.socket(); s.bind(('0.0.0.0', {port}))\" 2>&1 | tail -1"])
        assert "Address already in use" in again["StandardOutputContent"], again
        assert control.remapped_ports(cloud.home)[f"{public}:{port}"] == reached
        # The security group still decides: closed to the internet, the remapped port drops the SYN.
        allow(ec2, net["sg"]["ec2"], port, cidr="0.0.0.0/0", revoke=True)
        assert http_status(f"http://{reached}/") == "timed out"
    finally:
        held.close()
        if instance_id:
            ec2.terminate_instances(InstanceIds=[instance_id])
