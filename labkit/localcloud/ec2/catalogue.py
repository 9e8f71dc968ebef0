"""EC2's catalogues: the local Ubuntu image, and moto's instance type catalogues read when first asked for.

* **The image.** moto's image catalogue (``MOTO_AMIS_PATH``, moto's documented way in) is its default list plus
  the local "Ubuntu 22.04" image, registered in every region as Canonical publishes it (the lab launches
  Canonical's Ubuntu; moto ships no Canonical image).
* **Instance types.** moto reads every region's instance type offerings (45 MiB) and every instance type's
  description (10 MiB) when ``moto.ec2`` is imported; a lab uses one region and never describes instance types
  unless a student asks. :func:`catalogues_on_demand` reads each when asked for (the offerings each time, the
  descriptions once): same data.

Both must be set up before moto's EC2 models are imported: :func:`prepare` does it, first thing in the daemon.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

# The local "Ubuntu 22.04" image, registered in every region as Canonical publishes it.
JAMMY = {"ami_id": "ami-0a1b2c3d4e5f60722", "state": "available", "public": True, "owner_id": "099720109477",
         "image_location": "099720109477/ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20260101",
         "sriov": "simple", "root_device_type": "ebs", "root_device_name": "/dev/sda1",
         "description": "Canonical, Ubuntu, 22.04 LTS, amd64 jammy image (local cloud sandbox)",
         "image_type": "machine", "platform": None, "architecture": "x86_64",
         "name": "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20260101", "virtualization_type": "hvm",
         "hypervisor": "xen"}

OFFERINGS = "ec2/resources/instance_type_offerings"
INSTANCE_TYPES = "ec2/resources/instance_types.json"
_catalogue_lock = threading.Lock()


class _Offerings(dict[str, Any]):
    """One location type's instance type offerings, each region's file read whenever the region is asked for, and
    not kept: only RunInstances and DescribeInstanceTypeOfferings ask, and a region's offerings held 1.9 MiB (its
    availability zones') and 0.4 MiB (its own) in an idle lab's daemon."""

    def __init__(self, location_type: str, regions: set[str]) -> None:
        super().__init__()
        self.location_type, self.regions = location_type, regions

    def __missing__(self, region: str) -> list[dict[str, Any]]:
        if region not in self.regions:
            raise KeyError(region)
        from moto.utilities.utils import load_resource

        offerings: list[dict[str, Any]] = load_resource(f"{OFFERINGS}/{self.location_type}/{region}.json")
        for offering in offerings:
            offering["LocationType"] = self.location_type
        return offerings

    def get(self, region: str, default: Any = None) -> Any:
        return self[region] if region in self or region in self.regions else default


class _InstanceTypes(dict[str, Any]):
    """moto's ``INSTANCE_TYPES`` (name -> description), its file read when a description is first asked for
    (after import moto reads it by name only, in ``InstanceType``)."""

    def __missing__(self, name: str) -> dict[str, Any]:
        from moto.utilities.utils import load_resource

        with _catalogue_lock:
            if not dict.__len__(self):
                self.update(load_resource(INSTANCE_TYPES))
        return dict.__getitem__(self, name)


class _Catalogue:
    """``InstanceTypeBackend.instance_types`` (moto makes one ``InstanceType`` a type at import), made when
    DescribeInstanceTypes first asks."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.types: list[Any] | None = None
        self.lock = threading.Lock()

    def __get__(self, instance: Any, owner: Any = None) -> list[Any]:
        from moto.ec2.models import instance_types

        with self.lock:
            if self.types is None:
                self.types = [instance_types.InstanceType(name) for name in self.names]
        return self.types


def catalogues_on_demand() -> None:
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
                           "catalogues at import: re-check labkit/localcloud/ec2/catalogue.py")
    for location_type, regions in instance_types.INSTANCE_TYPE_OFFERINGS.items():
        instance_types.INSTANCE_TYPE_OFFERINGS[location_type] = _Offerings(location_type, set(regions))
    instance_types.INSTANCE_TYPES = _InstanceTypes()
    # a descriptor in place of moto's list, which its type hints name: the list is made on first read
    instance_types.InstanceTypeBackend.instance_types = _Catalogue(names)  # type: ignore[assignment]


def prepare(home: Path) -> None:
    """What must be set before moto's EC2 models are imported: the image catalogue with the local Ubuntu image
    (``MOTO_AMIS_PATH``), and the instance type catalogues on demand."""
    if "moto.ec2.models.amis" in sys.modules:
        raise RuntimeError("ec2.catalogue.prepare() must run before moto's EC2 models are imported")
    from moto.utilities.utils import load_resource

    images = [image for image in load_resource("ec2/resources/amis.json") if image["ami_id"] != JAMMY["ami_id"]]
    path = home / "moto" / "amis.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([*images, JAMMY]))
    os.environ["MOTO_AMIS_PATH"] = str(path)
    catalogues_on_demand()
