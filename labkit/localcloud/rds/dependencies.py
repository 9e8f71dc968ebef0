"""What RDS refuses to delete while something depends on it: a DB subnet group used by an instance."""
from __future__ import annotations

from typing import Any

from labkit.localcloud.core.errors import AwsError
from labkit.localcloud.core.patches import Patch


class InvalidDBSubnetGroupStateFault(AwsError):
    error_code = "InvalidDBSubnetGroupStateFault"


def _in_use(original: Any) -> Any:
    def wrapper(self: Any, subnet_name: str) -> Any:
        group = self.subnet_groups.get(subnet_name)
        users = [db.db_instance_identifier for db in self.databases.values()
                 if getattr(db, "db_subnet_group", None) is group] if group is not None else []
        if users:
            raise InvalidDBSubnetGroupStateFault(f"Cannot delete the subnet group '{subnet_name}' because at least "
                                                 f"one database instance: {users[0]} is still using it.")
        return original(self, subnet_name)
    return wrapper


def patches() -> list[Patch]:
    from moto.rds import models as rds

    return [Patch(rds.RDSBackend, "delete_subnet_group", "a DB subnet group an instance uses is refused "
                  "(InvalidDBSubnetGroupStateFault)", _in_use)]
