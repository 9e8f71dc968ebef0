"""RDS's catalogue, as AWS answers it: engine versions (DescribeDBEngineVersions, which moto lacks) and the
classes orderable in each Availability Zone (DescribeOrderableDBInstanceOptions, which moto answers only
for Aurora PostgreSQL and Neptune).

A DB instance class is offered in the zones where EC2 offers its instance type (db.t3.micro where
t3.micro is), as on AWS, where RDS runs on EC2 capacity: in us-east-1, not us-east-1e.
:mod:`moto_patches_rds` routes both calls here.
"""
from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends

# engine -> parameter group family -> (default version first, then the others offered)
VERSIONS = {
    "mysql": {"mysql8.0": ["8.0.42", "8.0.41", "8.0.40"], "mysql8.4": ["8.4.6", "8.4.5", "8.4.4"]},
    "mariadb": {"mariadb10.11": ["10.11.13", "10.11.11", "10.11.10"]},
}
CLASSES = ("db.t3.micro", "db.t3.small", "db.t4g.micro", "db.t4g.small")


def engine_versions(engine: str | None, version: str | None, family: str | None,
                    default_only: bool) -> list[dict[str, Any]]:
    rows = []
    for name, families in VERSIONS.items():
        if engine and engine != name:
            continue
        for fam, versions in families.items():
            if family and family != fam:
                continue
            for index, ver in enumerate(versions):
                if (version and ver != version and not ver.startswith(version + ".")) or (default_only and index):
                    continue
                rows.append({"Engine": name, "EngineVersion": ver, "DBParameterGroupFamily": fam,
                             "DBEngineDescription": "MySQL Community Edition" if name == "mysql" else "MariaDB",
                             "DBEngineVersionDescription": f"{'MySQL' if name == 'mysql' else 'MariaDB'} {ver}",
                             "Status": "available", "SupportsLogExportsToCloudwatchLogs": True})
    if default_only and version and not family:  # AWS: the default among the matching versions
        rows = rows[:1]
    return rows


def orderable(account: str, region: str, engine: str, version: str | None,
              db_class: str | None) -> list[dict[str, Any]]:
    ec2 = ec2_backends[account][region]
    options = []
    for versions in VERSIONS.get(engine, {}).values():
        for ver in versions:
            if version and ver != version:
                continue
            for cls in CLASSES:
                if db_class and cls != db_class:
                    continue
                offered = ec2.describe_instance_type_offerings(
                    location_type="availability-zone", filters={"instance-type": [cls.removeprefix("db.")]})
                options.append({
                    "Engine": engine, "EngineVersion": ver, "DBInstanceClass": cls,
                    "LicenseModel": "general-public-license", "StorageType": "gp2", "Vpc": True,
                    "AvailabilityZones": [{"Name": o["Location"]} for o in sorted(offered, key=lambda o: o["Location"])],
                    "MultiAZCapable": True, "ReadReplicaCapable": True, "SupportsStorageEncryption": True,
                    "SupportedNetworkTypes": ["IPV4"]})
    return options


def describe_db_engine_versions(response: Any) -> Any:
    """DescribeDBEngineVersions (``response`` is moto's RDSResponse)."""
    rows = engine_versions(response._get_param("Engine"), response._get_param("EngineVersion"),
                           response._get_param("DBParameterGroupFamily"),
                           response._get_bool_param("DefaultOnly", False))
    return ActionResult({"DBEngineVersions": rows})


def describe_orderable_db_instance_options(response: Any, moto_answer: Any) -> Any:
    """DescribeOrderableDBInstanceOptions for mysql and mariadb; moto's own answer for its other engines."""
    engine = response._get_param("Engine")
    if engine not in VERSIONS:
        return moto_answer(response)
    options = orderable(response.current_account, response.region, engine, response._get_param("EngineVersion"),
                        response._get_param("DBInstanceClass"))
    return ActionResult({"OrderableDBInstanceOptions": options})
