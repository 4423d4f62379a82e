"""Send the rankings' reads to a read replica when one is configured (DATABASE_REPLICA_URL).

Only the read models (rollups, standings and their "as of" state) are read there: they are what every ranking request reads, and
a replica that lags a few seconds behind shows standings a refresh older, which their "as of" time says.
Everything else, and any read inside a transaction (the refresh itself reads the windows it rewrites), uses
the primary, so no write is ever decided on a lagging copy.
"""

from django.conf import settings
from django.db import connections

REPLICA = "replica"
READ_MODELS = {
    "dailyrollup",
    "standingwindow",
    "teammemberstanding",
    "standingorder",
    "teamstanding",
    "standingsstate",
}


class ReadModelRouter:
    def db_for_read(self, model, **hints):
        if (
            REPLICA in settings.DATABASES
            and model._meta.app_label == "usage"
            and model._meta.model_name in READ_MODELS
            and not connections["default"].in_atomic_block
        ):
            return REPLICA
        return None

    def db_for_write(self, model, **hints):
        return None

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica is a copy of the primary: objects from either may relate

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db != REPLICA  # a replica is migrated by replication, never directly
