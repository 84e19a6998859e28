"""PostgreSQL hardening: the database itself keeps the ledger append-only.

Written in the writer's transaction that creates a ledger (init, import): a trigger refuses
UPDATE, DELETE and TRUNCATE of events for every role, the application role is granted only
what it needs, and a family's key is deleted only through ``claimledger_erase_key``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .keys import KEYS_TABLE
from .tiles import TILES_TABLE

if TYPE_CHECKING:
    from .writer import WriterTransaction

APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION {schema}.claimledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'claimledger: % on %.% refused: the ledger is append-only',
    TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME;
END $$;
DROP TRIGGER IF EXISTS claimledger_append_only ON {schema}.{table};
CREATE TRIGGER claimledger_append_only BEFORE UPDATE OR DELETE ON {schema}.{table}
  FOR EACH ROW EXECUTE FUNCTION {schema}.claimledger_refuse_change();
DROP TRIGGER IF EXISTS claimledger_no_truncate ON {schema}.{table};
CREATE TRIGGER claimledger_no_truncate BEFORE TRUNCATE ON {schema}.{table}
  FOR EACH STATEMENT EXECUTE FUNCTION {schema}.claimledger_refuse_change();
REVOKE UPDATE, DELETE, TRUNCATE ON {schema}.{table} FROM PUBLIC;
CREATE OR REPLACE FUNCTION {schema}.claimledger_erase_key(target text, target_id uuid)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT EXISTS (
    SELECT 1 FROM {schema}.{table} e WHERE e.originator_id = target_id
      AND convert_from(e.state, 'UTF8')::jsonb #>> '{{envelope,type}}' = 'Family.Erased'
      AND convert_from(e.state, 'UTF8')::jsonb #>> '{{envelope,stream}}' = target) THEN
    RAISE EXCEPTION 'claimledger: no Family.Erased event records the erasure of %', target;
  END IF;
  DELETE FROM {schema}.{keys} WHERE stream = target;
  RETURN FOUND;
END $$;
REVOKE ALL ON FUNCTION {schema}.claimledger_erase_key(text, uuid) FROM PUBLIC;
"""


def make_append_only(writer: WriterTransaction, events_table: str, app_role: str | None,
                     view_tables: Sequence[str] = ()) -> None:
    """On PostgreSQL the database itself refuses UPDATE, DELETE and TRUNCATE of events, in
    the writer's transaction (init's, or import's); nothing on SQLite (a file, whose access
    is its permissions).

    A trigger rejects them for every role (only a superuser, who can disable triggers, gets
    past it), and the application's role, when named, is granted only SELECT and INSERT;
    on the family-keys table too, where a key is deleted only by ``claimledger_erase_key``,
    which refuses unless the family's ``Family.Erased`` event is in the ledger. The role
    keeps the cohort report's view up to date, so it may change that view's tables
    (``view_tables``).
    """
    if writer.sqlite:
        return
    schema = f'"{writer.schema}"'
    table = f'"{events_table}"'
    run = writer.execute
    run(APPEND_ONLY_SQL.format(schema=schema, table=table, keys=f'"{KEYS_TABLE}"'))
    if not app_role:
        return
    role = '"' + app_role.replace('"', "") + '"'
    run(f"REVOKE ALL ON {schema}.{table} FROM {role}")
    run(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
    run(f"GRANT SELECT, INSERT ON {schema}.{table} TO {role}")
    # A family's key goes only through erasure: the function deletes it only when the
    # transaction has recorded the family's Family.Erased event.
    run(f'REVOKE ALL ON {schema}."{KEYS_TABLE}" FROM {role}')
    run(f'GRANT SELECT, INSERT ON {schema}."{KEYS_TABLE}" TO {role}')
    run(f"GRANT EXECUTE ON FUNCTION {schema}.claimledger_erase_key(text, uuid) TO {role}")
    run(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
    for t in view_tables:
        run(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {schema}."{t}" TO {role}')
    # The tiles are derived and checked (verify rebuilds them; every proof read from them is
    # checked against a signed root): seal rewrites the right edge of the tree.
    run(f'GRANT SELECT, INSERT, UPDATE ON {schema}."{TILES_TABLE}" TO {role}')


@dataclass
class Hardening:
    """What the PostgreSQL catalog says is in place (``claimledger doctor`` reports it)."""

    triggers: set[str] = field(default_factory=set)
    erase_function: bool = False
    #: role -> privileges on the events table
    grants: dict[str, set[str]] = field(default_factory=dict)


def hardening_in_place(datastore: Any, events_table: str) -> Hardening:
    """The events table's triggers, the erase function and the roles' grants."""
    schema = getattr(datastore, "schema", "") or "public"
    found = Hardening()
    with datastore.transaction(commit=False) as c:
        c.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(%s) "
                  "AND NOT tgisinternal", (f'"{schema}"."{events_table}"',))
        found.triggers = {r["tgname"] for r in c.fetchall()}
        c.execute("SELECT to_regprocedure(%s) AS f",
                  (f'"{schema}".claimledger_erase_key(text,uuid)',))
        found.erase_function = bool(c.fetchone()["f"])
        c.execute("SELECT grantee, privilege_type FROM information_schema.role_table_grants "
                  "WHERE table_schema = %s AND table_name = %s", (schema, events_table))
        for r in c.fetchall():
            found.grants.setdefault(r["grantee"], set()).add(r["privilege_type"])
    return found
