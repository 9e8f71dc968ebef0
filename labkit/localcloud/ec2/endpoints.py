"""VPC endpoints as AWS keeps them: private DNS that ModifyVpcEndpoint really turns on and off, and the filters of
DescribeVpcEndpoints (listed, checked and applied by :mod:`labkit.localcloud.core.patches`).

An interface endpoint with private DNS makes the service's default name resolve to the endpoint inside the VPC
(the network model sends the VPC's calls through it, :mod:`labkit.reachability`); without it the default name is
the public endpoint. Enabling it needs the VPC's ``enableDnsSupport`` and ``enableDnsHostnames``, and no other
endpoint of the VPC holding the same name, as on AWS (both ``InvalidParameter``).
"""
from __future__ import annotations

from typing import Any

from labkit.localcloud.core.errors import AwsError
from labkit.localcloud.core.patches import Patch


class InvalidParameter(AwsError):
    error_code = "InvalidParameter"


def _private_name(service_name: str) -> str:
    """``com.amazonaws.us-east-1.secretsmanager`` -> ``secretsmanager.us-east-1.amazonaws.com``."""
    parts = service_name.split(".")
    return f"{parts[-1]}.{parts[-2]}.amazonaws.com" if len(parts) >= 4 else service_name


def check_private_dns(backend: Any, vpc_id: str, service_name: str, endpoint_id: str | None = None) -> None:
    """Refuse private DNS for an interface endpoint of ``service_name`` in ``vpc_id`` as AWS does."""
    vpc = backend.vpcs.get(vpc_id)
    if vpc is not None and not (vpc.enable_dns_support and vpc.enable_dns_hostnames):
        raise InvalidParameter("Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC "
                               f"attributes set to true for {vpc_id}")
    for other in list(backend.vpc_end_points.values()):
        if (other.id != endpoint_id and other.vpc_id == vpc_id and other.service_name == service_name
                and str(other.vpc_endpoint_type).lower() == "interface" and other.private_dns_enabled
                and other.state != "deleted"):
            raise InvalidParameter("private-dns-enabled cannot be set because there is already a conflicting DNS "
                                   f"domain for {_private_name(service_name)} in the VPC {vpc_id}")


def patches() -> list[Patch]:
    """The endpoint patches."""
    from moto.ec2.models import vpcs
    from moto.ec2.responses import vpcs as vpc_responses

    def creates_checked(original: Any) -> Any:
        def wrapper(self: Any) -> Any:
            interface = (self._get_param("VpcEndpointType") or "").lower() == "interface"
            if interface and self._get_bool_param("PrivateDnsEnabled", if_none=True):
                check_private_dns(self.ec2_backend, self._get_param("VpcId"), self._get_param("ServiceName"))
            return original(self)
        return wrapper

    def modifies_private_dns(original: Any) -> Any:
        def wrapper(self: Any) -> Any:
            wanted = self._get_bool_param("PrivateDnsEnabled")
            endpoint = self.ec2_backend.describe_vpc_endpoints(vpc_end_point_ids=[self._get_param("VpcEndpointId")])[0]
            interface = str(endpoint.vpc_endpoint_type).lower() == "interface"
            if interface and wanted:
                check_private_dns(self.ec2_backend, endpoint.vpc_id, endpoint.service_name, endpoint.id)
            answer = original(self)
            if interface and wanted is not None:
                endpoint.private_dns_enabled = wanted
            return answer
        return wrapper

    def filters(original: Any) -> Any:
        def wrapper(self: Any, filter_name: str, method_name: str | None = None) -> Any:
            if filter_name == "vpc-endpoint-id":
                return self.id
            if filter_name == "ip-address-type":
                return getattr(self, "ip_address_type", None) or "ipv4"
            if filter_name == "service-region":
                parts = str(self.service_name).split(".")
                return parts[-2] if len(parts) >= 4 else None
            return original(self, filter_name, method_name)
        return wrapper

    return [
        Patch(vpc_responses.VPCs, "create_vpc_endpoint", "private DNS for an interface endpoint needs the VPC's DNS "
              "support and hostnames and no conflicting endpoint (InvalidParameter)", creates_checked),
        Patch(vpc_responses.VPCs, "modify_vpc_endpoint", "ModifyVpcEndpoint PrivateDnsEnabled turns private DNS on "
              "or off (moto 5.2.5 answers true and changes nothing), with the same checks", modifies_private_dns),
        Patch(vpcs.VPCEndPoint, "get_filter_value", "DescribeVpcEndpoints filters vpc-endpoint-id, ip-address-type "
              "and service-region (moto 5.2.5 answered them with a server error)", filters),
    ]
