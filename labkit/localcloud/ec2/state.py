"""What the lab's state needs to know of moto's EC2 (issue 23; composed by :mod:`labkit.localcloud.server`).

* Another service's records hold EC2 subnets (an RDS DB subnet group): saved as a reference to the subnet, which
  the load finds in the live EC2 backend (the record as it was, if the subnet was deleted since), so a restored
  RDS points at the one EC2 there is, not at a copy of it.
* EC2's ``__init__`` registers each backend in class-level weak sets (for cross-account VPC peering and transit
  gateway attachments): a loaded backend is registered the same way.
"""
from __future__ import annotations

import weakref
from typing import Any

from labkit.localcloud.core.pickling import BackendKey, StatePickler, StateRule, load_backend

REGISTRIES = ("vpc_refs", "vpc_pcx_refs", "backend_refs")


def _subnet(key: BackendKey, subnet_id: str, record: dict[str, Any]) -> Any:
    ec2: Any = load_backend(*key)
    try:
        return ec2.get_subnet(subnet_id)
    except Exception:  # deleted since the other service saved: what the other service shows of it
        from moto.ec2.models.subnets import Subnet

        subnet = Subnet.__new__(Subnet)
        zone = next((z for z in ec2.describe_availability_zones() if z.name == record["zone"]), None)
        vars(subnet).update(id=subnet_id, vpc_id=record["vpc_id"], cidr_block=record["cidr_block"],
                            _availability_zone=zone, state="available", ec2_backend=ec2)
        return subnet


def _reduce_subnet(subnet: Any, pickler: StatePickler) -> Any:
    if subnet.ec2_backend is pickler.root:
        return NotImplemented  # EC2's own file holds its subnets
    record = {"vpc_id": subnet.vpc_id, "cidr_block": subnet.cidr_block, "zone": subnet.availability_zone}
    return _subnet, (pickler.backend_ref(subnet.ec2_backend), subnet.id, record)


def _register(backend: Any) -> None:
    for registry in REGISTRIES:
        getattr(type(backend), registry)[type(backend)].add(weakref.ref(backend))


def rules() -> list[StateRule]:
    from moto.ec2.models import EC2Backend
    from moto.ec2.models.subnets import Subnet

    return [
        StateRule(Subnet, "a subnet another service refers to (an RDS DB subnet group) is the live one, not a copy "
                  "of the EC2 backend", reduce=_reduce_subnet),
        StateRule(EC2Backend, "EC2's __init__ registers each backend in class-level weak sets (VPC peering, transit "
                  "gateway attachments)", after_load=_register),
    ]
