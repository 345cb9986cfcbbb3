"""Persistence: the schema (SQLAlchemy 2 typed models), its migrations, and the
operations the rest of firewatch performs on it (:class:`storage.repository.Store`)."""

from storage.db import create_db_engine, upgrade
from storage.repository import Store

__all__ = ["Store", "create_db_engine", "upgrade"]
