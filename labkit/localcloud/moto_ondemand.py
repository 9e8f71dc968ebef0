"""moto's big catalogues, read when first asked for instead of wholesale: the memory of an idle lab.

Part of :mod:`labkit.localcloud.moto_patches` (its :func:`patches` lists these with the others, checked against
the pinned moto the same way). Every lab runs a daemon of its own, so what moto holds per daemon is paid
once per student:

* **EC2's catalogues.** moto reads every region's instance type offerings (45 MiB) and every instance type's
  description (10 MiB) when ``moto.ec2`` is imported; a lab uses one region and never describes instance types
  unless a student asks. :func:`ec2_catalogues_on_demand` reads each when first asked for: same data.
* **AWS managed policies.** With ``MOTO_IAM_LOAD_MANAGED_POLICIES`` (AWS's managed policies exist, as on AWS)
  moto builds all of them (about 1,600, 14 MiB) in every IAM backend it creates. Here an IAM backend makes an
  AWS managed policy when a request names its ARN (GetPolicy, AttachRolePolicy, ...); a request that lists
  them (ListPolicies, GetAccountAuthorizationDetails) makes them all first, so every answer is moto's own.
* **Partitions nobody uses.** moto finds the account of an access key by asking the IAM backend of every
  partition (aws, aws-cn, aws-us-gov, ...), which creates the five a lab never uses, each with its managed
  policies (70 MiB). A backend that was never created holds no access keys: only the existing ones are asked.
* **botocore's service models.** moto, the request classifier (:mod:`labkit.localcloud.iam_requests`) and the
  daemon's own clients (the network model's, the telemetry's) each read them through a loader of their own:
  the EC2 model alone is 14 MiB a copy. :func:`model_loader` is the daemon's one loader (moto's, which adds
  moto's extras to the models), :func:`botocore_session` a session that reads through it.
* **A layer's zip.** moto keeps the base64 text of a published layer's zip (20 MiB for the lab's pymysql
  layer) beside the zip itself, and never reads it again; the zip (15 MiB) is read when a worker starts. The
  text is dropped, the zip kept in a file under the lab's home (:func:`keep_layers_in`), as Lambda keeps it in
  storage rather than in the memory of its API.
"""
from __future__ import annotations

import functools
import hashlib
import json
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any, Callable

POLICY_ARN_PREFIX = "arn:{partition}:iam::aws:policy"
OFFERINGS = "ec2/resources/instance_type_offerings"
INSTANCE_TYPES = "ec2/resources/instance_types.json"
_index_lock = threading.Lock()
_index: dict[str, tuple[int, int]] = {}
_catalogue_lock = threading.Lock()
_layer_store: list[Path] = []  # the folder of layers' zips, once keep_layers_in() named it


def _policy_offsets() -> dict[str, tuple[int, int]]:
    """Where each AWS managed policy's entry sits in moto's data (name -> (start, end)); built once, by one pass
    over the text that keeps nothing but the offsets."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data as text

    with _index_lock:
        if _index:
            return _index
        decoder, skip = json.JSONDecoder(), json.decoder.WHITESPACE.match
        position = skip(text, text.index("{") + 1).end()
        while text[position] != "}":
            name, position = decoder.raw_decode(text, position)
            position = skip(text, skip(text, position).end() + 1).end()  # past the colon
            _value, end = decoder.raw_decode(text, position)
            _index[name] = (position, end)
            position = skip(text, end).end()
            if text[position] == ",":
                position = skip(text, position + 1).end()
        return _index


def _policy_data(name: str) -> dict[str, Any] | None:
    from moto.iam.aws_managed_policies import aws_managed_policies_data as text

    where = _policy_offsets().get(name)
    return json.loads(text[where[0]:where[1]]) if where else None


class ManagedPolicies(dict):
    """One IAM backend's ``managed_policies`` (ARN -> policy): the customer managed ones as moto keeps them, and
    each AWS managed one made, as moto makes it, when first named."""

    def __init__(self, backend: Any, with_aws: bool) -> None:
        super().__init__()
        self.backend, self.complete = backend, not with_aws  # without AWS's policies there is nothing to make
        self._lock = threading.Lock()

    def _make(self, arn: object) -> Any:
        """The AWS managed policy ``arn`` names, made and kept; None if it names none."""
        prefix = POLICY_ARN_PREFIX.format(partition=self.backend.partition)
        if self.complete or not isinstance(arn, str) or not arn.startswith(prefix + "/"):
            return None
        data = _policy_data(arn.rsplit("/", 1)[-1])
        if data is None:
            return None
        from moto.iam.models import AWSManagedPolicy

        policy = AWSManagedPolicy.from_data(arn.rsplit("/", 1)[-1], self.backend.account_id,
                                            self.backend.region_name, data)
        if policy.arn != arn:  # the right name under another path
            return None
        with self._lock:
            return self.setdefault(arn, policy)

    def __missing__(self, arn: str) -> Any:
        policy = self._make(arn)
        if policy is None:
            raise KeyError(arn)
        return policy

    def __contains__(self, arn: object) -> bool:
        return super().__contains__(arn) or self._make(arn) is not None

    def get(self, arn: str, default: Any = None) -> Any:
        try:
            return self[arn]
        except KeyError:
            return default

    def load_all(self) -> None:
        """Make every AWS managed policy, in moto's order (AWS's first, then the account's own)."""
        if self.complete:
            return
        from moto.iam.models import AWSManagedPolicy

        with self._lock:
            made: dict[str, Any] = {}
            for name in _policy_offsets():
                policy = AWSManagedPolicy.from_data(name, self.backend.account_id, self.backend.region_name,
                                                    _policy_data(name) or {})
                made[policy.arn] = dict.get(self, policy.arn, policy)
            made.update((arn, p) for arn, p in dict.items(self) if not isinstance(p, AWSManagedPolicy))
            self.clear()
            self.update(made)
            self.complete = True
        self.backend.aws_managed_policies = [p for p in self.values() if isinstance(p, AWSManagedPolicy)]


class _Offerings(dict):
    """One location type's instance type offerings, each region's file read when the region is first asked for."""

    def __init__(self, location_type: str, regions: set[str]) -> None:
        super().__init__()
        self.location_type, self.regions = location_type, regions

    def __missing__(self, region: str) -> list[dict]:
        if region not in self.regions:
            raise KeyError(region)
        from moto.utilities.utils import load_resource

        offerings = load_resource(f"{OFFERINGS}/{self.location_type}/{region}.json")
        for offering in offerings:
            offering["LocationType"] = self.location_type
        self[region] = offerings
        return offerings

    def get(self, region: str, default: Any = None) -> Any:
        return self[region] if region in self or region in self.regions else default


class _InstanceTypes(dict):
    """moto's ``INSTANCE_TYPES`` (name -> description), its file read when a description is first asked for
    (after import moto reads it by name only, in ``InstanceType``)."""

    def __missing__(self, name: str) -> dict:
        from moto.utilities.utils import load_resource

        with _catalogue_lock:
            if not dict.__len__(self):
                self.update(load_resource(INSTANCE_TYPES))
        return dict.__getitem__(self, name)


class _Catalogue:
    """``InstanceTypeBackend.instance_types`` (moto makes one ``InstanceType`` a type at import), made when
    DescribeInstanceTypes first asks."""

    def __init__(self, names: list[str]) -> None:
        self.names, self.types = names, None
        self.lock = threading.Lock()

    def __get__(self, instance: Any, owner: Any = None) -> list:
        from moto.ec2.models import instance_types

        with self.lock:
            if self.types is None:
                self.types = [instance_types.InstanceType(name) for name in self.names]
        return self.types


def ec2_catalogues_on_demand() -> None:
    """Import moto's EC2 models without their catalogues; each is read when first asked for (see above)."""
    from moto.utilities import utils

    original, skipped, names = utils.load_resource, set(), []

    def skip_catalogues(resource: str) -> Any:
        if resource.startswith(OFFERINGS + "/"):
            skipped.add(resource)
            return []
        if resource == INSTANCE_TYPES:
            names.extend(original(resource))
            return dict.fromkeys(names, {})  # the names, for what moto derives from them at import
        return original(resource)

    utils.load_resource = skip_catalogues
    try:
        from moto.ec2.models import instance_types
    finally:
        utils.load_resource = original
    if not skipped or not names:
        raise RuntimeError("moto.ec2 was imported before prepare_environment(), or moto no longer reads its "
                           "catalogues at import: re-check moto_ondemand.ec2_catalogues_on_demand()")
    for location_type, regions in instance_types.INSTANCE_TYPE_OFFERINGS.items():
        instance_types.INSTANCE_TYPE_OFFERINGS[location_type] = _Offerings(location_type, set(regions))
    instance_types.INSTANCE_TYPES = _InstanceTypes()
    instance_types.InstanceTypeBackend.instance_types = _Catalogue(names)


def keep_layers_in(folder: Path) -> None:
    """Keep published layers' zips as files in ``folder`` (emptied: moto's records live in memory only, so the
    zips an earlier daemon left there belong to nothing)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    _layer_store[:] = [folder]


def _layer_code(version: Any) -> bytes:
    path = vars(version).get("_labkit_code_path")
    return path.read_bytes() if path is not None else vars(version).get("_labkit_code", b"")


def _store_layer_code(version: Any, code: bytes) -> None:
    if not _layer_store or not code:
        version._labkit_code = code
        return
    path = _layer_store[0] / f"{hashlib.sha256(code).hexdigest()}.zip"
    if not path.exists():
        staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        staging.write_bytes(code)
        staging.replace(path)
    version._labkit_code_path = path


@functools.cache
def model_loader() -> Any:
    """The daemon's one loader of service models (moto's): each model is read once, whoever asks."""
    from moto.core.loaders import create_loader

    return create_loader()


def botocore_session() -> Any:
    """A new botocore session that reads its models through :func:`model_loader`."""
    import botocore.session

    session = botocore.session.get_session()
    session.register_component("data_loader", model_loader())
    return session


def patches() -> list[Any]:
    """The patches of this module, as :class:`labkit.localcloud.moto_patches.Patch` rows."""
    from moto.awslambda import models as awslambda
    from moto.core import base_backend
    from moto.core import utils as core_utils
    from moto.iam import models as iam

    from labkit.localcloud.moto_patches import Patch

    def no_aws_policies(_original: Any) -> Callable[[Any], list]:
        return lambda self: []

    def on_demand(_original: Any) -> Callable[[Any], ManagedPolicies]:
        return lambda self: ManagedPolicies(self, iam.load_iam_aws_managed_policies())

    def names_policy_first(original: Any) -> Any:
        def wrapper(self: Any, policy_arn: str, *args: Any, **kwargs: Any) -> Any:
            self.managed_policies.get(policy_arn)  # moto looks it up among the policies it lists
            return original(self, policy_arn, *args, **kwargs)
        return wrapper

    def lists_all(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            self.managed_policies.load_all()
            return original(self, *args, **kwargs)
        return wrapper

    def existing_partitions(_original: Any) -> Callable[[str], str]:
        def get_account_id_from(access_key: str) -> str:
            for account_id, account in list(iam.iam_backends.items()):
                for backend in list(dict.values(account)):
                    if access_key in backend.access_keys:
                        return account_id
            return iam.DEFAULT_ACCOUNT_ID
        return get_account_id_from

    def forgets_upload(original: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            self.content = {k: v for k, v in self.content.items() if k != "ZipFile"}
        return wrapper

    backend = iam.IAMBackend
    attach = "an AWS managed policy is made when first named (moto finds it among the policies it lists)"
    return [
        Patch(backend, "_init_aws_policies", "moto builds every AWS managed policy (about 1,600, 14 MiB) in every "
              "IAM backend; they are made when first named (ManagedPolicies)", no_aws_policies),
        Patch(backend, "_init_managed_policies", "a backend's managed policies: the AWS ones made when first named",
              on_demand),
        *(Patch(backend, method, attach, names_policy_first) for method in (
            "attach_role_policy", "detach_role_policy", "attach_group_policy", "detach_group_policy",
            "attach_user_policy", "detach_user_policy")),
        Patch(backend, "list_policies", "ListPolicies lists every AWS managed policy, as moto does",
              lists_all),
        Patch(backend, "get_account_authorization_details", "so does GetAccountAuthorizationDetails", lists_all),
        Patch(iam, "get_account_id_from", "moto asks the IAM backend of every partition, creating the five a lab "
              "never uses (70 MiB); a backend never created holds no access keys", existing_partitions),
        Patch(awslambda.LayerVersion, "__init__", "moto keeps the base64 text of the layer's zip (20 MiB for the "
              "lab's) beside the zip it decoded and never reads it again", forgets_upload),
        Patch(awslambda.LayerVersion, "code_bytes", "a layer's zip (15 MiB for the lab's) is kept in a file, read "
              "when a worker starts", lambda _missing: property(_layer_code, _store_layer_code), adds=True),
        Patch(core_utils, "_load_service_model", "moto reads each service model through a new loader; the daemon "
              "reads them once, through the one loader its own clients and classifier share",
              lambda _original: lambda service, model: model_loader().load_service_model(service, model)),
        Patch(base_backend.AccountSpecificBackend, "get_session", "moto's botocore session (for the regions of "
              "a service) reads the endpoints through that loader too",
              lambda _original: classmethod(functools.cache(lambda _cls: botocore_session()))),
    ]
