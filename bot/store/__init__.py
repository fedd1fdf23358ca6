"""Where requests and their audit trail live: SQLite by default, PostgreSQL for replicas."""

from bot.store.engine import create_store_engine
from bot.store.requests import (
    AuditEvent,
    DuplicateCommandError,
    Store,
    new_request_id,
    utcnow,
)

__all__ = [
    "AuditEvent",
    "DuplicateCommandError",
    "Store",
    "create_store_engine",
    "new_request_id",
    "utcnow",
]
