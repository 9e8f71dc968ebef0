"""The local cloud's changes to moto's EC2/VPC (instances, the default security group, public IPs, network
interfaces, endpoints) and SSM (part of :mod:`labkit.localcloud.moto_patches`, which lists, checks and applies
them).
"""
from __future__ import annotations

from typing import Any, Callable

from labkit.localcloud.moto_patches import Patch, _each_changed, _service

def patches() -> list[Patch]:
    """The EC2/VPC and SSM patches, as :class:`labkit.localcloud.moto_patches.Patch` rows."""
    from moto.ec2.models import elastic_ip_addresses as eips
    from moto.ec2.models import elastic_network_interfaces as enis
    from moto.ec2.models import instances
    from moto.ssm import models as ssm
    from moto.ssm import responses as ssm_responses

    def send_command(original: Any) -> Any:
        def wrapper(self: Any, **kwargs: Any) -> Any:
            boxes = _service("ec2")
            if boxes is None:
                return original(self, **kwargs)
            return boxes.send_command(lambda: original(self, **kwargs), self.account_id, self.region_name, kwargs)
        return wrapper

    def response(method: str) -> Callable[[Any], Any]:
        def replace(_missing: None) -> Any:
            def wrapper(self: Any) -> str:
                boxes = _service("ec2")
                if boxes is None:
                    raise NotImplementedError(f"{method} is served by the local cloud's ec2 service")
                return getattr(boxes, method)(self)
            return wrapper
        return replace

    backend, instance = instances.InstanceBackend, instances.Instance
    return [
        *_default_group_patches(),
        Patch(backend, "run_instances", "an instance is a sandbox folder whose user data runs at launch",
              _each_instance("ec2", "on_run")),
        Patch(backend, "stop_instances", "StopInstances ends the sandbox's processes",
              _each_changed("ec2", "on_stop")),
        Patch(backend, "start_instances", "StartInstances starts the enabled systemd units again",
              _each_changed("ec2", "on_start")),
        Patch(backend, "terminate_instances", "TerminateInstances ends the processes and removes the disk",
              _each_changed("ec2", "on_terminate")),
        Patch(enis, "random_public_ip", "an instance's public IP is an address of the lab's loopback block, where "
              "the network model opens its ports as its security groups say", _lab_public_ip),
        Patch(eips, "random_ip", "an Elastic IP too is an address of the lab's block", _lab_public_ip),
        Patch(instance, "public_dns_name", "no name the local cloud could give resolves to the lab's address on "
              "this machine, so it shows none, as AWS does for a VPC without DNS hostnames: the app is reached at "
              "the public IP, as the tutorial says", lambda _original: property(lambda self: "")),
        Patch(ssm.SimpleSystemManagerBackend, "send_command", "SendCommand to a managed instance runs the "
              "commands in its sandbox; an unmanaged one is refused with InvalidInstanceId", send_command),
        Patch(ssm_responses.SimpleSystemManagerResponse, "list_command_invocations",
              "moto 5.2.5 lacks ListCommandInvocations (with Details)", response("list_command_invocations"), adds=True),
        Patch(ssm_responses.SimpleSystemManagerResponse, "describe_instance_information",
              "moto 5.2.5 lacks DescribeInstanceInformation: managed instances are those with an SSM role",
              response("describe_instance_information"), adds=True),
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


def _lab_public_ip(original: Callable[[], str]) -> Callable[[], str]:
    def allocate() -> str:
        network = _service("network")
        return network.new_public_address() if network is not None else original()
    return allocate


def _each_instance(service: str, hook: str) -> Callable[[Any], Any]:
    """For RunInstances, which returns a reservation."""
    def replace(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            reservation = original(self, *args, **kwargs)
            target = _service(service)
            for instance in reservation.instances if target is not None else ():
                getattr(target, hook)(instance)
            return reservation
        return wrapper
    return replace
