"""Data-match ingest: ``schemas`` (a row to checked values, per kind), ``rows`` (a file's
text to rows, pure), ``importer`` (planning and sealing a file against the ledger), ``sink``
and ``writer`` (the transaction, in this process or a second one). May import the domain,
ledger, store and errors; the file contract is docs/ingest-format.md."""

from .importer import count_rows, ingest
from .schemas import KINDS, SCHEMAS

__all__ = ["KINDS", "SCHEMAS", "count_rows", "ingest"]
