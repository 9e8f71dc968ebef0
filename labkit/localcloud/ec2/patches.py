"""The local cloud's changes to moto's EC2/VPC: instances are sandboxes, the default security group, network
interfaces and endpoints (listed, checked and applied by :mod:`labkit.localcloud.core.patches`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from labkit.localcloud.core.patches import Patch, each_changed, find

if TYPE_CHECKING:
    from labkit.localcloud.ec2.service import Ec2Service


def patches() -> list[Patch]:
    """The EC2/VPC patches."""
    from moto.ec2.models import instances

    from labkit.localcloud.ec2.service import Ec2Service

    backend, instance = instances.InstanceBackend, instances.Instance
    return [
        *_default_group_patches(),
        Patch(backend, "run_instances", "an instance is a sandbox folder whose user data runs at launch",
              _each_instance(Ec2Service, "on_run")),
        Patch(backend, "stop_instances", "StopInstances ends the sandbox's processes",
              each_changed(Ec2Service, "on_stop")),
        Patch(backend, "start_instances", "StartInstances starts the enabled systemd units again",
              each_changed(Ec2Service, "on_start")),
        Patch(backend, "terminate_instances", "TerminateInstances ends the processes and removes the disk",
              each_changed(Ec2Service, "on_terminate")),
        Patch(instance, "public_dns_name", "no name the local cloud could give resolves to the lab's address on "
              "this machine, so it shows none, as AWS does for a VPC without DNS hostnames: the app is reached at "
              "the public IP, as the tutorial says", lambda _original: property(lambda self: "")),
    ]


def _default_group_patches() -> list[Patch]:
    """AWS's default security group (CreateSecurityGroup: "If you don't specify a security group when you launch
    an instance, the instance is launched into the appropriate default security group. A default security group
    includes a default rule that grants instances unrestricted network access to each other.")."""
    from moto.ec2.models import elastic_network_interfaces as enis
    from moto.ec2.models import instances, security_groups, vpcs

    def with_self_rule(original: Any) -> Any:
        def wrapper(self: Any, name: str, description: str, *args: Any, **kwargs: Any) -> Any:
            group = original(self, name, description, *args, **kwargs)
            if group.is_default:
                self.authorize_security_group_ingress(group.id, "-1", None, None, [], vpc_id=group.vpc_id,
                                                      source_groups=[{"GroupId": group.id}])
            return group
        return wrapper

    def groups_of_primary_interface(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            primary = self.nics.get(0)
            if not self.security_groups and primary is not None:
                self.security_groups = list(primary._group_set)
        return wrapper

    def groups_replace_the_interfaces(original: Any) -> Any:
        def wrapper(self: Any, instance_id: str, new_group_id_list: list[str]) -> Any:
            instance = original(self, instance_id, new_group_id_list)
            primary = instance.nics.get(0)
            if primary is not None:
                primary._group_set = list(instance.security_groups)
            return instance
        return wrapper

    def interface_groups_are_the_instances(original: Any) -> Any:
        def wrapper(self: Any, eni_id: str, group_ids: list[str], *args: Any, **kwargs: Any) -> None:
            original(self, eni_id, group_ids, *args, **kwargs)
            eni = self.get_network_interface(eni_id)
            if group_ids and eni.instance is not None and eni.device_index == 0:
                eni.instance.security_groups = list(eni._group_set)
        return wrapper

    def endpoint_in_default_group(original: Any) -> Any:
        def wrapper(self: Any, vpc_id: str, service_name: str, endpoint_type: str | None, *args: Any,
                    **kwargs: Any) -> Any:
            endpoint = original(self, vpc_id, service_name, endpoint_type, *args, **kwargs)
            default = self.get_default_security_group(vpc_id)
            if (endpoint_type or "").lower() == "interface" and not endpoint.security_group_ids and default:
                endpoint.security_group_ids = [default.id]
            return endpoint
        return wrapper

    return [Patch(security_groups.SecurityGroupBackend, "create_security_group", "a VPC's default group lets in "
                  "all traffic from itself, as on AWS (moto 5.2.5's has no inbound rule)", with_self_rule),
            Patch(instances.Instance, "prep_nics", "an instance launched without groups (SecurityGroupIds, or "
                  "Groups on its network interface) shows its primary interface's: the VPC's default group when none "
                  "was given, as on AWS (moto 5.2.5 shows none)", groups_of_primary_interface),
            Patch(instances.InstanceBackend, "modify_instance_security_groups", "ModifyInstanceAttribute Groups "
                  "replaces the groups of the instance's primary interface (moto 5.2.5 keeps the old ones on it, "
                  "so the instance showed both)", groups_replace_the_interfaces),
            Patch(enis.NetworkInterfaceBackend, "modify_network_interface_attribute", "ModifyNetworkInterfaceAttribute "
                  "Groups on an instance's primary interface are the instance's groups (moto 5.2.5 kept the old "
                  "ones on the instance, so it counted as in both)", interface_groups_are_the_instances),
            Patch(vpcs.VPCBackend, "create_vpc_endpoint", "an interface endpoint created without SecurityGroupIds is "
                  "in the VPC's default group (CreateVpcEndpoint: \"If this parameter is not specified, we use the "
                  "default security group for the VPC\"); moto 5.2.5 gives it none", endpoint_in_default_group)]


def _each_instance(kind: type[Ec2Service], hook: str) -> Callable[[Any], Any]:
    """For RunInstances, which returns a reservation."""
    def replace(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            reservation = original(self, *args, **kwargs)
            target = find(kind)
            for instance in reservation.instances if target is not None else ():
                getattr(target, hook)(instance)
            return reservation
        return wrapper
    return replace
