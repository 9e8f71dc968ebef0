"""Every change the local cloud makes to moto, in one place, for one pinned moto version.

moto keeps the records; the local cloud's services (:mod:`labkit.localcloud.services`) run what AWS
runs. Where moto has an official way in -- ``MOTO_AMIS_PATH`` for the image catalogue,
``/moto-api/reset`` for a reset -- the cloud uses it. Everything else is a patch listed in
:func:`patches`, each with the reason it exists. :func:`apply` refuses any moto but
:data:`MOTO_VERSION` and any patch whose target has gone, so an upgrade breaks loudly here, once,
instead of quietly in the services: re-read each patch against the new moto, then move the pin
(here and in pyproject.toml) together.

The wrappers find the service they call through the registry given to :func:`apply` (``iam``,
``rds``, ``lambda``, ``ec2``, ``scheduler``); a service that is not registered leaves moto's own
behaviour.
"""
from __future__ import annotations

import importlib.metadata
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from labkit.localcloud.services import Registry

MOTO_VERSION = "5.2.5"
# The local "Ubuntu 22.04" image, registered in every region as Canonical publishes it.
JAMMY = {"ami_id": "ami-0a1b2c3d4e5f60722", "state": "available", "public": True, "owner_id": "099720109477",
         "image_location": "099720109477/ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20260101",
         "sriov": "simple", "root_device_type": "ebs", "root_device_name": "/dev/sda1",
         "description": "Canonical, Ubuntu, 22.04 LTS, amd64 jammy image (local cloud sandbox)",
         "image_type": "machine", "platform": None, "architecture": "x86_64",
         "name": "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20260101", "virtualization_type": "hvm",
         "hypervisor": "xen"}
# AWS's current defaults (moto 5.2.5's are years old and lack mariadb).
ENGINE_VERSIONS = {"mysql": "8.0.40", "MySQL": "8.0.40", "mariadb": "10.11.10"}


@dataclass(frozen=True)
class Patch:
    """``owner.attribute = replace(original)``, and why; ``adds`` for an attribute moto lacks (``replace``
    then gets None, and moto growing the attribute is an error: check whether the patch is still needed)."""

    owner: Any
    attribute: str
    why: str
    replace: Callable[[Any], Any]
    adds: bool = False

    @property
    def label(self) -> str:
        return f"{getattr(self.owner, '__module__', '')}.{getattr(self.owner, '__qualname__', self.owner.__name__)}" \
               f".{self.attribute}".lstrip(".")


_services = Registry()
_originals: dict[tuple[int, str], Any] = {}


def _service(name: str) -> Any:
    """The registered service ``name``, or None (then the wrapper keeps moto's own behaviour)."""
    return _services.get(name)


def check_version() -> None:
    """Refuse any moto but the one these patches were written against."""
    installed = importlib.metadata.version("moto")
    if installed != MOTO_VERSION:
        raise RuntimeError(
            f"the local cloud's moto patches are written for moto {MOTO_VERSION}, but moto {installed} is installed: "
            "run `make setup` to install the pinned version, or re-check every patch in "
            "labkit/localcloud/moto_patches.py against the new moto and move the pin here and in pyproject.toml")


def prepare_environment(home: Path) -> None:
    """moto's documented ways in that must be set before moto's models are imported.

    ``MOTO_AMIS_PATH``: the image catalogue is moto's default list plus the local Ubuntu 22.04 image
    (the lab launches Canonical's Ubuntu; moto ships no Canonical image). moto's EC2 catalogues are read when
    first asked for and published layers' zips kept under ``home/moto/layers`` (:mod:`.moto_ondemand`).
    """
    check_version()
    if "moto.ec2.models.amis" in sys.modules:
        raise RuntimeError("prepare_environment() must run before moto's EC2 models are imported")
    from moto.utilities.utils import load_resource

    images = [image for image in load_resource("ec2/resources/amis.json") if image["ami_id"] != JAMMY["ami_id"]]
    path = home / "moto" / "amis.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([*images, JAMMY]))
    os.environ["MOTO_AMIS_PATH"] = str(path)
    from labkit.localcloud import moto_ondemand

    moto_ondemand.ec2_catalogues_on_demand()
    moto_ondemand.keep_layers_in(home / "moto" / "layers")


def _hooked(service: str, hook: str) -> Callable[[Any], Any]:
    """A backend method wrapper that passes moto's result to ``<service>.<hook>(result)``."""
    def replace(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            target = _service(service)
            if target is not None:
                getattr(target, hook)(result)
            return result
        return wrapper
    return replace


def _each_changed(service: str, hook: str) -> Callable[[Any], Any]:
    """For moto's ``*_instances`` that return ``[(instance, previous_state), ...]``."""
    def replace(original: Any) -> Any:
        def wrapper(self: Any, instance_ids: list[str]) -> Any:
            changed = original(self, instance_ids)
            target = _service(service)
            for instance, _previous in changed if target is not None else ():
                getattr(target, hook)(instance)
            return changed
        return wrapper
    return replace


def _rds_patches() -> list[Patch]:
    from moto.rds import models as rds
    from moto.rds import responses as rds_responses

    from labkit.localcloud import rds_catalog, rds_events

    def modify_db_instance(original: Any) -> Any:
        def wrapper(self: Any, db_instance_identifier: str, db_kwargs: dict) -> Any:
            db = original(self, db_instance_identifier, db_kwargs)
            target = _service("rds")
            if target is not None:
                target.on_modify(db, db_kwargs.get("MasterUserPassword") or db_kwargs.get("master_user_password"))
            return db
        return wrapper

    def modify_db_subnet_group(_original: Any) -> Any:
        def wrapper(self: Any, subnet_name: str, description: str | None, subnets: list) -> Any:
            group = self.subnet_groups.get(subnet_name)
            if group is None:
                raise rds.DBSubnetGroupNotFoundError(subnet_name)
            group.subnets = subnets
            if description is not None:
                group.description = description
            return group
        return wrapper

    def orderable_options(original: Any) -> Any:
        def wrapper(self: Any) -> Any:
            return rds_catalog.describe_orderable_db_instance_options(self, original)
        return wrapper

    def reboot_db_instance(_original: Any) -> Any:
        def wrapper(self: Any, db_instance_identifier: str, *args: Any, **kwargs: Any) -> Any:
            db = self.describe_db_instances(db_instance_identifier)[0]
            if db.status != "available":  # AWS refuses to reboot an instance that is not available
                raise rds.RDSClientError("InvalidDBInstanceState",
                                         f"DB instance {db_instance_identifier} is not in available state.")
            target = _service("rds")
            if target is not None:
                target.on_reboot(db)
            return db
        return wrapper

    backend = rds.RDSBackend
    return [
        Patch(backend, "reboot_db_instance", "moto's returns the record and restarts nothing; RDS restarts the "
              "engine (rebooting -> available)", reboot_db_instance),
        Patch(backend, "describe_events", "moto ignores EventCategories and the time window (AWS: the last hour "
              "by default)", rds_events.filtered_describe_events),
        Patch(rds.Event, "EVENT_MAP", "AWS's event wording, and the availability/recovery/notification events "
              "the local cloud records", rds_events.aws_event_map),
        Patch(backend, "create_db_instance", "a mysql/mariadb instance is a real database server (rds.on_create)",
              _hooked("rds", "on_create")),
        Patch(backend, "stop_db_instance", "StopDBInstance stops the server process", _hooked("rds", "on_stop")),
        Patch(backend, "start_db_instance", "StartDBInstance starts it again", _hooked("rds", "on_start")),
        Patch(backend, "modify_db_instance", "MasterUserPassword changes the real server's password",
              modify_db_instance),
        Patch(backend, "delete_db_instance", "DeleteDBInstance ends the server and removes its data",
              _hooked("rds", "on_delete")),
        Patch(backend, "modify_db_subnet_group", "moto 5.2.5 pops the group and never stores it back; AWS keeps "
              "it under its (lower-case) name", modify_db_subnet_group),
        Patch(rds.DBInstance, "address", "the endpoint is the instance's own address in the lab's loopback block, "
              "where the network model decides who gets in", lambda _original: property(_db_address)),
        Patch(rds.DBInstance, "default_engine_versions", "AWS's current default versions; moto's lack mariadb",
              lambda original: {**original, **ENGINE_VERSIONS}),
        Patch(rds_responses.RDSResponse, "describe_db_engine_versions", "moto 5.2.5 lacks DescribeDBEngineVersions "
              "(rds_catalog answers it for mysql and mariadb)",
              lambda _missing: rds_catalog.describe_db_engine_versions, adds=True),
        Patch(rds_responses.RDSResponse, "describe_orderable_db_instance_options", "moto 5.2.5 answers it only for "
              "Aurora PostgreSQL and Neptune; rds_catalog answers mysql and mariadb", orderable_options),
    ]


def _db_address(db: Any) -> str:
    network = _service("network")
    return network.db_address(db.db_instance_identifier) if network is not None else "127.0.0.1"


def _statement_id_conflict(sid: str) -> Exception:
    """Lambda's answer to AddPermission with a StatementId already in the policy (AWS's code, message, 409)."""
    from moto.awslambda.exceptions import LambdaClientError

    error = LambdaClientError("ResourceConflictException", f"The statement id ({sid}) provided already exists. "
                              "Please provide a new statement id, or remove the existing statement.")
    error.code = 409
    return error


def _lambda_vpc_config(fn: Any) -> dict[str, Any] | None:
    from moto.ec2.models import ec2_backends

    if not fn._vpc_config:
        return None
    config = {**fn._vpc_config}
    subnets = config.get("SubnetIds") or []
    config.pop("VpcId", None)
    if subnets:
        try:
            config["VpcId"] = ec2_backends[fn.account_id][fn.region].get_subnet(subnets[0]).vpc_id
        except Exception:  # noqa: BLE001 - an unknown subnet has no VPC to name
            pass
    return config


def _lambda_patches() -> list[Patch]:
    from moto.awslambda import models as awslambda
    from moto.awslambda import policy

    from labkit.localcloud import iam_service

    def invoke(original: Any) -> Any:
        def wrapper(self: Any, body: str, request_headers: Any, response_headers: dict) -> bytes:
            service = _service("lambda")
            if service is None:
                return original(self, body, request_headers, response_headers)
            payload = body.encode() if isinstance(body, str) else (body or b"")
            payload, headers = service.invoke(
                self, payload or b"{}", request_headers.get("x-amz-invocation-type") or "RequestResponse",
                tail=request_headers.get("x-amz-log-type") == "Tail",
                client_context=request_headers.get("x-amz-client-context"))
            response_headers.update(headers)
            return payload
        return wrapper

    def new_revision(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            self._labkit_revision = None
            return original(self, *args, **kwargs)
        return wrapper

    def delete_function(original: Any) -> Any:
        def wrapper(self: Any, function_name: str, qualifier: str | None = None) -> None:
            arns = [fn.function_arn for fn in self.list_functions()
                    if function_name in (fn.function_name, fn.function_arn)]
            original(self, function_name, qualifier)
            service = _service("lambda")
            for arn in arns if service is not None else ():
                service.retire(arn)
        return wrapper

    def checks_role_on_create(original: Any) -> Any:
        def wrapper(self: Any, spec: dict[str, Any]) -> Any:
            if _service("iam") is not None and spec.get("Role"):
                iam_service.check_execution_role(spec["Role"], spec.get("VpcConfig"))
            return original(self, spec)
        return wrapper

    def checks_role_on_update(original: Any) -> Any:
        def wrapper(self: Any, function_name: str, qualifier: str, body: dict[str, Any]) -> Any:
            if _service("iam") is not None and ("Role" in body or "VpcConfig" in body):
                fn = self.get_function(function_name, qualifier)
                vpc = body.get("VpcConfig", {"SubnetIds": fn._vpc_config.get("SubnetIds")} if fn._vpc_config else None)
                iam_service.check_execution_role(body.get("Role") or fn.role, vpc)
            return original(self, function_name, qualifier, body)
        return wrapper

    def unique_statement_id(original: Any) -> Any:
        def wrapper(self: Any, raw: str, qualifier: str | None = None) -> Any:
            sid = (json.loads(raw) if raw else {}).get("StatementId")
            if sid and any(statement.get("Sid") == sid for statement in self.statements):
                raise _statement_id_conflict(sid)
            return original(self, raw, qualifier)
        return wrapper

    fn = awslambda.LambdaFunction
    return [
        Patch(policy.Policy, "add_statement", "AddPermission with a StatementId the policy already holds is "
              "refused with ResourceConflictException (moto 5.2.5 appends a second statement)",
              unique_statement_id),
        Patch(fn, "invoke", "Invoke runs the real code in an awslambdaric worker (moto would need docker)", invoke),
        Patch(fn, "update_configuration", "a new configuration means new workers (a cold start)", new_revision),
        Patch(fn, "update_function_code", "new code means new workers (a cold start)", new_revision),
        Patch(awslambda.LambdaBackend, "delete_function", "DeleteFunction ends the function's workers",
              delete_function),
        Patch(awslambda.LambdaBackend, "create_function", "CreateFunction refuses a role Lambda cannot assume "
              "or, in a VPC, one without the ENI permissions (iam_service.check_execution_role)",
              checks_role_on_create),
        Patch(awslambda.LambdaBackend, "update_function_configuration", "the same role checks when the role or "
              "the VPC changes", checks_role_on_update),
        Patch(fn, "vpc_config", "VpcConfig names its subnets' real VpcId (moto 5.2.5 answers \"vpc-123abc\")",
              lambda _original: property(_lambda_vpc_config)),
    ]


def _ec2_patches() -> list[Patch]:
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


def _events_patches() -> list[Patch]:
    from moto.events import models as events

    return [Patch(events.EventsBackend, "put_rule", "a scheduled rule is anchored on the lab clock when it is "
                  "put (AWS starts counting a rate from PutRule)", _hooked("scheduler", "register"))]


def _clock_patches() -> list[Patch]:
    from moto.logs import models as logs_models
    from moto.s3 import models as s3_models

    def lab_utcnow(original: Any) -> Any:
        def wrapper() -> Any:
            scheduler = _service("scheduler")
            return scheduler.clock.now().replace(tzinfo=None) if scheduler is not None else original()
        return wrapper  # moto's utcnow() is naive UTC

    return [Patch(s3_models, "utcnow", "S3's LastModified is lab time (labkit.localcloud.clock)", lab_utcnow),
            Patch(logs_models, "utcnow", "Logs accepts events in a window around lab time, not real time",
                  lab_utcnow)]


def _s3_patches() -> list[Patch]:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.s3.responses import S3Response
    from werkzeug.datastructures import ImmutableMultiDict

    def body_kept(_original: Callable[..., str | None]) -> Callable[..., str | None]:
        def _get_body(_self: Any, environ: dict[str, Any]) -> str | None:
            if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
                return None
            try:
                size = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return None
            if not size:
                return None
            data = environ["wsgi.input"].read(size)
            environ["wsgi.input"] = io.BytesIO(data)  # always put back, whatever the bytes
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                return None  # not a query API call: leave the service to the path and headers
        return _get_body

    def bytes_as_sent(original: Callable[..., None]) -> Callable[..., None]:
        def setup_class(self: Any, request: Any, *args: Any, **kwargs: Any) -> None:
            if not (request.method == "POST" and request.mimetype == "multipart/form-data"):
                request.get_data(cache=True)  # the bytes as sent; request.data now returns them
                vars(request).update(form=ImmutableMultiDict(), files=ImmutableMultiDict())  # and no form
            original(self, request, *args, **kwargs)
        return setup_class

    return [Patch(DomainDispatcherApplication, "_get_body", "to route an unsigned request (a presigned URL) moto "
                  "reads a form-encoded body as UTF-8 and puts it back only when that works: a presigned PUT of "
                  "bytes that are not UTF-8 lost its body and hung reading the socket again", body_kept),
            Patch(S3Response, "setup_class", "S3 reads a form only in a browser upload (POST Object, "
                  "multipart/form-data); werkzeug parses any application/x-www-form-urlencoded body as a form, so "
                  "moto stored such a PutObject/UploadPart body as empty (or took its fields as parameters): every "
                  "other request's body is kept as the bytes sent", bytes_as_sent)]


def _core_patches() -> list[Patch]:
    from moto import backends
    from moto.core import responses

    modules = tuple(backends.list_of_moto_modules())

    def once_per_class(original: Callable[[Any], list[str]]) -> Callable[[Any], list[str]]:
        names: dict[Any, list[str]] = {}
        return lambda clazz: names[clazz] if clazz in names else names.setdefault(clazz, original(clazz))

    return [Patch(backends, "list_of_moto_modules", "moto lists its own package folders from disk to route every "
                  "request (175 stat calls); the list is fixed for the pinned version, so read it once",
                  lambda _original: lambda: modules),
            Patch(responses, "method_names_from_class", "moto runs inspect.getmembers over the response class on "
                  "every request (0.6 ms of CPU per API call); a class's methods are fixed once the patches are "
                  "applied, so list them once per class", once_per_class)]


def patches() -> list[Patch]:
    """Every patch, grouped by the service it serves."""
    from labkit.localcloud import moto_ondemand

    return [*_core_patches(), *_rds_patches(), *_lambda_patches(), *_ec2_patches(), *_events_patches(),
            *_s3_patches(), *_clock_patches(), *moto_ondemand.patches()]


def apply(services: Registry) -> list[Patch]:
    """Check the moto version, patch moto (once per process) and route the wrappers to ``services``."""
    global _services
    check_version()
    _services = services
    applied = patches()
    for patch in applied:
        key = (id(patch.owner), patch.attribute)
        if key in _originals:
            continue  # already patched in this process; the wrappers now see the new registry
        present = patch.attribute in vars(patch.owner)
        if present == patch.adds:
            state = "already has" if patch.adds else "has no"
            raise RuntimeError(f"moto {MOTO_VERSION} {state} {patch.label} ({patch.why}); "
                               "re-check labkit/localcloud/moto_patches.py")
        _originals[key] = vars(patch.owner).get(patch.attribute)
        setattr(patch.owner, patch.attribute, patch.replace(getattr(patch.owner, patch.attribute, None)))
    return applied


def describe() -> list[dict[str, str]]:
    """The patches as rows (``python -m labkit.localcloud.moto_patches`` prints them)."""
    return [{"patch": patch.label, "why": patch.why} for patch in patches()]


if __name__ == "__main__":
    for row in describe():
        print(f"{row['patch']}\n    {row['why']}")
