"""Storage: schema rendering, migrations, and the embedded/server store."""

from .backend import QueryRejected, Store, StoreConfig, StoreUnavailable
from .ddl import SchemaOptions
from .migrations import MigrationError, migrate

__all__ = ["MigrationError", "QueryRejected", "SchemaOptions", "Store", "StoreConfig", "StoreUnavailable", "migrate"]
