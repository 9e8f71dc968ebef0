"""What EC2 refuses to delete while something depends on it, with AWS's codes and messages.

On AWS what holds a VPC's parts is a network interface: an instance's, the ones Lambda makes for a function in a
VPC, an RDS instance's, an interface endpoint's. A security group used by any of them (or named by another group's
rule) is refused with ``DependencyViolation``, so is a subnet with one in it, a VPC with anything left in it, an
internet gateway detached while addresses in the VPC are public. The local cloud finds the same dependents in
moto's records: instances' interfaces, Lambda functions' ``VpcConfig``, RDS instances (in the subnet of their
subnet group in their availability zone) and interface endpoints. A refused delete changes nothing. (On AWS a
function's interfaces outlive it by up to 20 minutes; here they go with the function.)
"""
from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from typing import Any

from labkit.localcloud.core.errors import AwsError
from labkit.localcloud.core.patches import Patch

LIVE = ("pending", "running", "stopping", "stopped", "shutting-down")  # an instance whose interface still exists
# The VPC whose DeleteVpc is under way: moto then deletes its main route table and default group itself
_DELETING_VPC: contextvars.ContextVar[str | None] = contextvars.ContextVar("labkit_deleting_vpc", default=None)


class DependencyViolation(AwsError):
    error_code = "DependencyViolation"


class CannotDelete(AwsError):
    error_code = "CannotDelete"


class InvalidParameterValue(AwsError):
    error_code = "InvalidParameterValue"


class AddressInUse(AwsError):
    error_code = "InvalidIPAddress.InUse"


def _has_dependencies(kind: str, resource_id: str) -> DependencyViolation:
    return DependencyViolation(f"The {kind} '{resource_id}' has dependencies and cannot be deleted.")


# -- who depends on what ----------------------------------------------------------------------------------------
def _interfaces(backend: Any) -> Iterator[tuple[str | None, set[str], str | None]]:
    """(subnet id, security group ids, VPC id) of every network interface of ``backend``'s region, requester-managed
    ones included."""
    for eni in list(backend.enis.values()):
        instance = getattr(eni, "instance", None)
        if instance is not None and instance._state.name not in LIVE:
            continue
        subnet = getattr(eni, "subnet", None)
        yield (getattr(subnet, "id", None), {g.id for g in getattr(eni, "_group_set", [])},
               getattr(subnet, "vpc_id", None))
    yield from _lambda_interfaces(backend)
    yield from _rds_interfaces(backend)
    for endpoint in list(getattr(backend, "vpc_end_points", {}).values()):
        if str(endpoint.vpc_endpoint_type).lower() == "interface" and endpoint.state != "deleted":
            for subnet_id in endpoint.subnet_ids or []:
                yield subnet_id, set(endpoint.security_group_ids or []), endpoint.vpc_id


def _lambda_interfaces(backend: Any) -> Iterator[tuple[str | None, set[str], str | None]]:
    from moto.awslambda.models import lambda_backends

    account = lambda_backends[backend.account_id]
    if backend.region_name not in account:  # no Lambda backend made in this region: no function
        return
    for fn in list(account[backend.region_name].list_functions()):
        config = fn._vpc_config or {}
        groups = set(config.get("SecurityGroupIds") or [])
        for subnet_id in config.get("SubnetIds") or []:
            yield subnet_id, groups, _vpc_of(backend, subnet_id)


def _rds_interfaces(backend: Any) -> Iterator[tuple[str | None, set[str], str | None]]:
    from moto.rds.models import rds_backends

    account = rds_backends[backend.account_id]
    if backend.region_name not in account:
        return
    for db in list(account[backend.region_name].databases.values()):
        group = getattr(db, "db_subnet_group", None)
        subnets = list(getattr(group, "_subnets", []) or [])  # moto's Subnet objects (``subnets`` shows dicts)
        if not subnets:
            continue
        zone = getattr(db, "availability_zone", None)
        subnet = next((s for s in subnets if getattr(s, "availability_zone", None) == zone), subnets[0])
        yield subnet.id, set(db.vpc_security_group_ids or []), subnet.vpc_id


def _vpc_of(backend: Any, subnet_id: str) -> str | None:
    for subnets in backend.subnets.values():
        if subnet_id in subnets:
            return str(subnets[subnet_id].vpc_id)
    return None


def _group_referenced(backend: Any, group_id: str) -> bool:
    """Whether a rule of another group names ``group_id`` (a group's rules naming itself do not count)."""
    for groups in list(backend.groups.values()):
        for group in list(groups.values()):
            if group.id == group_id:
                continue
            for rule in [*group.ingress_rules, *group.egress_rules]:
                if (rule.source_group or {}).get("GroupId") == group_id:
                    return True
    return False


def _find_group(backend: Any, group_id: str | None, name: str | None) -> Any:
    if group_id:
        return backend.get_security_group_from_id(group_id)
    return backend.get_security_group_by_name_or_id(name) if name else None


# -- the checks, each before moto's own method ---------------------------------------------------------------------
def _check_security_group(backend: Any, name: str | None = None, group_id: str | None = None) -> None:
    group = _find_group(backend, group_id, name)
    if group is None:
        return  # moto answers InvalidGroup.NotFound
    if group.vpc_id and group.vpc_id == _DELETING_VPC.get():
        return
    if group.name == "default" and group.vpc_id:
        raise CannotDelete(f'the specified group: "{group.id}" name: "default" cannot be deleted by a user')
    if any(group.id in groups for _subnet, groups, _vpc in _interfaces(backend)) or _group_referenced(backend, group.id):
        raise DependencyViolation(f"resource {group.id} has a dependent object")


def _check_subnet(backend: Any, subnet_id: str) -> None:
    if any(subnet == subnet_id for subnet, _groups, _vpc in _interfaces(backend)):
        raise _has_dependencies("subnet", subnet_id)


def _public_addresses_in(backend: Any, vpc_id: str) -> bool:
    for eni in list(backend.enis.values()):
        instance = getattr(eni, "instance", None)
        live = instance is None or instance._state.name in ("pending", "running")
        if getattr(getattr(eni, "subnet", None), "vpc_id", None) == vpc_id and eni.public_ip and live:
            return True
    return any(address.eni is not None and getattr(address.eni.subnet, "vpc_id", None) == vpc_id
               for address in list(backend.addresses))


def _check_detach(backend: Any, internet_gateway_id: str, vpc_id: str) -> None:
    gateway = backend.get_internet_gateway(internet_gateway_id)
    if gateway.vpc is not None and gateway.vpc.id == vpc_id and _public_addresses_in(backend, vpc_id):
        raise DependencyViolation(f"Network {vpc_id} has some mapped public address(es). Please unmap those public "
                                  "address(es) before detaching the gateway.")


def _check_internet_gateway(backend: Any, internet_gateway_id: str) -> None:
    if backend.get_internet_gateway(internet_gateway_id).vpc is not None:
        raise _has_dependencies("internetGateway", internet_gateway_id)


def _check_vpc(backend: Any, vpc_id: str) -> None:
    if vpc_id not in backend.vpcs:
        return  # moto answers InvalidVpcID.NotFound
    groups = [g for g in backend.groups.get(vpc_id, {}).values() if g.name != "default"]
    tables = [t for t in backend.route_tables.values() if t.vpc_id == vpc_id and not _is_main(t)]
    gateways = [g for g in backend.internet_gateways.values() if g.vpc is not None and g.vpc.id == vpc_id]
    endpoints = [e for e in getattr(backend, "vpc_end_points", {}).values()
                 if e.vpc_id == vpc_id and e.state != "deleted"]
    acls = [a for a in backend.network_acls.values() if a.vpc_id == vpc_id and not a.default]
    subnets = [s for s in backend.subnets.values() for s in s.values() if s.vpc_id == vpc_id]
    if groups or tables or gateways or endpoints or acls or subnets:
        raise _has_dependencies("vpc", vpc_id)


def _is_main(table: Any) -> bool:
    return table.main_association_id is not None


def _check_route_table(backend: Any, route_table_id: str) -> None:
    table = backend.route_tables.get(route_table_id)
    if table is not None and _is_main(table) and table.vpc_id != _DELETING_VPC.get():
        raise _has_dependencies("routeTable", route_table_id)


def _check_network_acl(backend: Any, network_acl_id: str) -> None:
    acl = backend.network_acls.get(network_acl_id)
    if acl is not None and acl.default:
        raise InvalidParameterValue(f"cannot delete default network ACL {network_acl_id}")


def _check_interface(backend: Any, eni_id: str) -> None:
    eni = backend.enis.get(eni_id)
    if eni is not None and (eni.instance is not None or eni.attachment_id):
        raise InvalidParameterValue(f"Network interface '{eni_id}' is currently in use.")


def _check_release(backend: Any, address: str | None = None, allocation_id: str | None = None) -> None:
    found = backend.address_by_ip([address]) if address else \
        backend.address_by_allocation([allocation_id]) if allocation_id else []
    if found and (found[0].eni is not None or found[0].instance is not None) and found[0].domain == "vpc":
        raise AddressInUse("Address is in use.")


def _deleting_vpc(original: Any) -> Any:
    def wrapper(self: Any, vpc_id: str) -> Any:
        _check_vpc(self, vpc_id)
        token = _DELETING_VPC.set(vpc_id)
        try:
            vpc = original(self, vpc_id)
        finally:
            _DELETING_VPC.reset(token)
        for acl in [a for a in self.network_acls.values() if a.vpc_id == vpc_id and a.default]:
            self.network_acls.pop(acl.id, None)  # AWS deletes the VPC's default network ACL with it (moto left it)
        return vpc
    return wrapper


def _checked_first(check: Callable[..., None]) -> Callable[[Any], Any]:
    def replace(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            check(self, *args, **kwargs)
            return original(self, *args, **kwargs)
        return wrapper
    return replace


def patches() -> list[Patch]:
    """Each delete refused as AWS refuses it while something depends on the resource."""
    from moto.ec2.models import elastic_ip_addresses as eips
    from moto.ec2.models import elastic_network_interfaces as enis
    from moto.ec2.models import internet_gateways, network_acls, route_tables, security_groups, subnets, vpcs

    return [
        Patch(security_groups.SecurityGroupBackend, "delete_security_group", "a group used by an instance, a Lambda "
              "function, an RDS instance or an endpoint, or named by another group's rule, is refused "
              "(DependencyViolation); the default group cannot be deleted (CannotDelete)",
              _checked_first(_check_security_group)),
        Patch(subnets.SubnetBackend, "delete_subnet", "a subnet with an instance's, a function's, a database's or "
              "an endpoint's network interface is refused (DependencyViolation)", _checked_first(_check_subnet)),
        Patch(internet_gateways.InternetGatewayBackend, "detach_internet_gateway", "detaching while addresses in "
              "the VPC are public is refused (DependencyViolation: mapped public addresses)",
              _checked_first(_check_detach)),
        Patch(internet_gateways.InternetGatewayBackend, "delete_internet_gateway", "an attached gateway is refused "
              "with AWS's words (moto: 'is being utilized by')", _checked_first(_check_internet_gateway)),
        Patch(vpcs.VPCBackend, "delete_vpc", "a VPC with groups, route tables, an attached gateway, endpoints or "
              "network ACLs left is refused (moto deleted them silently)", _deleting_vpc),
        Patch(route_tables.RouteBackend, "delete_route_table", "the main route table is refused "
              "(DependencyViolation)", _checked_first(_check_route_table)),
        Patch(network_acls.NetworkAclBackend, "delete_network_acl", "the default network ACL cannot be deleted",
              _checked_first(_check_network_acl)),
        Patch(enis.NetworkInterfaceBackend, "delete_network_interface", "an attached network interface is in use",
              _checked_first(_check_interface)),
        Patch(eips.ElasticAddressBackend, "release_address", "an associated Elastic IP is in use",
              _checked_first(_check_release)),
    ]
