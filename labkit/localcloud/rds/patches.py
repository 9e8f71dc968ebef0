"""The local cloud's changes to moto's RDS: an instance is a real database server (listed, checked and applied by
:mod:`labkit.localcloud.core.patches`).
"""
from __future__ import annotations

from typing import Any

from labkit.localcloud.core.patches import Patch, find, hooked
from labkit.localcloud.rds.exceptions import InvalidDBInstanceState

# AWS's current defaults (moto 5.2.5's are years old and lack mariadb).
ENGINE_VERSIONS = {"mysql": "8.0.40", "MySQL": "8.0.40", "mariadb": "10.11.10"}


def patches() -> list[Patch]:
    """The RDS patches."""
    from moto.rds import models as rds
    from moto.rds import responses as rds_responses
    from moto.rds.exceptions import DBSubnetGroupNotFoundError

    from labkit.localcloud.rds import catalog as rds_catalog
    from labkit.localcloud.rds import events as rds_events
    from labkit.localcloud.rds.service import RdsService

    def modify_db_instance(original: Any) -> Any:
        def wrapper(self: Any, db_instance_identifier: str, db_kwargs: dict[str, Any]) -> Any:
            db = original(self, db_instance_identifier, db_kwargs)
            target = find(RdsService)
            if target is not None:
                target.on_modify(db, db_kwargs.get("MasterUserPassword") or db_kwargs.get("master_user_password"))
            return db
        return wrapper

    def modify_db_subnet_group(_original: Any) -> Any:
        def wrapper(self: Any, subnet_name: str, description: str | None, subnets: list[Any]) -> Any:
            group = self.subnet_groups.get(subnet_name)
            if group is None:
                raise DBSubnetGroupNotFoundError(subnet_name)
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
                raise InvalidDBInstanceState(f"DB instance {db_instance_identifier} is not in available state.")
            target = find(RdsService)
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
        Patch(backend, "create_db_instance", "a mysql/mariadb instance is a real database server (RdsService.on_create)",
              hooked(RdsService, "on_create")),
        Patch(backend, "stop_db_instance", "StopDBInstance stops the server process", hooked(RdsService, "on_stop")),
        Patch(backend, "start_db_instance", "StartDBInstance starts it again", hooked(RdsService, "on_start")),
        Patch(backend, "modify_db_instance", "MasterUserPassword changes the real server's password",
              modify_db_instance),
        Patch(backend, "delete_db_instance", "DeleteDBInstance ends the server and removes its data",
              hooked(RdsService, "on_delete")),
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
    from labkit.localcloud.network.service import NetworkService

    network = find(NetworkService)
    return network.db_address(db.db_instance_identifier) if network is not None else "127.0.0.1"
