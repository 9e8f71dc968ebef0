"""The local cloud's changes to moto's EC2 addresses: public IPs and Elastic IPs are addresses of the lab's
loopback block, handed out by the network model (listed, checked and applied by
:mod:`labkit.localcloud.core.patches`)."""
from __future__ import annotations

from collections.abc import Callable

from labkit.localcloud.core.patches import Patch, find


def _lab_public_ip(original: Callable[[], str]) -> Callable[[], str]:
    from labkit.localcloud.network.service import NetworkService

    def allocate() -> str:
        network = find(NetworkService)
        return network.new_public_address() if network is not None else original()
    return allocate


def patches() -> list[Patch]:
    """The address patches."""
    from moto.ec2.models import elastic_ip_addresses as eips
    from moto.ec2.models import elastic_network_interfaces as enis

    return [
        Patch(enis, "random_public_ip", "an instance's public IP is an address of the lab's loopback block, where "
              "the network model opens its ports as its security groups say", _lab_public_ip),
        Patch(eips, "random_ip", "an Elastic IP too is an address of the lab's block", _lab_public_ip),
    ]
