"""Data-match ingest: CSV schemas for each kind and the atomic, idempotent importer."""

from .importer import count_rows, ingest
from .schemas import KINDS, SCHEMAS

__all__ = ["KINDS", "SCHEMAS", "count_rows", "ingest"]
