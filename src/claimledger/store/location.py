"""Persistence chosen by one SQLAlchemy-style URL (``--db`` / ``CLAIMLEDGER_DB``).

``sqlite:///path`` (the embedded default, ``claimledger.sqlite`` in the working directory)
uses ``eventsourcing.sqlite``; ``postgresql://user:pw@host:port/db`` uses
``eventsourcing.postgres``. Measured here, eventsourcing's own SQLite recorder reads about
108k events/s against 16.5k for ``eventsourcing_sqlalchemy`` on SQLite, so the URL is parsed
with SQLAlchemy but the events go through eventsourcing's native recorders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import ConfigError

DEFAULT_URL = "sqlite:///claimledger.sqlite"
APP_NAME = "claimledger"
#: An arbitrary, fixed PostgreSQL advisory lock key for "append to the claimledger events
#: table" (claimledger.store.pg, which imports the PostgreSQL driver, is loaded only for a
#: PostgreSQL ledger).
APPEND_LOCK_KEY = 0x636C6D6C  # "clml"
_SQLITE_PREFIX = "sqlite:///"


@dataclass(frozen=True)
class Location:
    url: str
    backend: str  # "sqlite" | "postgres"
    env: dict[str, str]
    sqlite_path: Path | None = None
    #: The URL as messages show it: any password replaced by ***.
    shown: str = ""

    def __post_init__(self) -> None:
        if not self.shown:
            object.__setattr__(self, "shown", self.url)

    @property
    def exists(self) -> bool | None:
        """For a SQLite file, whether it exists; None where the server must be asked."""
        if self.sqlite_path is None:
            return None
        return self.sqlite_path.exists()

    def existing(self) -> Location:
        """This location for a ledger that exists: on PostgreSQL the events table is not
        created (an application role that may only SELECT and INSERT cannot, and need not)."""
        if self.backend != "postgres":
            return self
        return replace(self, env={**self.env, "CREATE_TABLE": "false"})


def resolve_url(url: str | None) -> str:
    return url or os.environ.get("CLAIMLEDGER_DB") or DEFAULT_URL


def locate(url: str | None) -> Location:
    """Parse the URL into an eventsourcing environment; a bad URL is a ConfigError."""
    url = resolve_url(url)
    plain = sqlite_file(url)
    if plain is not None:
        backend, u = "sqlite", None
    else:
        # Anything but a plain SQLite file URL is parsed by SQLAlchemy (imported only then:
        # it is a fifth of a second of every command's start-up).
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            u = make_url(url)
        except ArgumentError as e:
            raise ConfigError(f"bad database URL {url!r}: {e}") from None
        backend = u.get_backend_name()
    if backend == "sqlite":
        db = plain if u is None else (u.database or "")
        if not db or db == ":memory:":
            raise ConfigError(f"bad database URL {url!r}: a SQLite ledger needs a file path")
        path = Path(db)
        if not path.parent.exists():
            raise ConfigError(f"bad database URL {url!r}: directory {path.parent} does not exist")
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(path),
            "SQLITE_LOCK_TIMEOUT": "10",
        }
        return Location(url, "sqlite", env, path)
    assert u is not None
    if backend in ("postgresql", "postgres"):
        if not u.database:
            raise ConfigError(f"bad database URL {url!r}: no database name")
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": u.database,
            "POSTGRES_HOST": u.host or "localhost",
            "POSTGRES_PORT": str(u.port or 5432),
            "POSTGRES_USER": u.username or "",
            "POSTGRES_PASSWORD": u.password or "",
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_POOL_SIZE": "2",
            "POSTGRES_LOCK_TIMEOUT": "10",
            "APPLICATION_RECORDER_TOPIC": "claimledger.store.pg:AppendOnlyRecorder",
        }
        return Location(url, "postgres", env,
                        shown=u.render_as_string(hide_password=True) if u.password else url)
    raise ConfigError(
        f"bad database URL {url!r}: unsupported backend {backend!r} (use sqlite or postgresql)"
    )


def sqlite_file(url: str) -> str | None:
    """The path of a plain SQLite file URL (``sqlite:///`` + a path with no query, escape or
    fragment), exactly as SQLAlchemy reads it; None for any other URL
    (tests/test_cli_contract.py checks the two agree)."""
    if url.startswith(_SQLITE_PREFIX) and not any(c in url for c in "?%#"):
        return url[len(_SQLITE_PREFIX):]
    return None


#: The events table eventsourcing makes for the claimledger application.
EVENTS_TABLE = f"{APP_NAME}_events"


def check_server(location: Location, *, need_ledger: bool, role: str | None = None) -> None:
    """Before anything is opened or created: on PostgreSQL, connect once directly, before
    the application's pool does, so that a refusal reaches the user at once with the
    server's own reason (the pool would retry for seconds and then hide it); with
    ``need_ledger``, a database with no ledger tables is said to be one, and nothing is
    created in it; with ``role`` (init's ``--app-role``), that role must exist."""
    from ..errors import UsageError

    if role and location.backend != "postgres":
        raise UsageError("--app-role applies to a PostgreSQL ledger only")
    if location.backend != "postgres":
        return
    import psycopg

    env = location.env
    try:
        conn = psycopg.connect(
            host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"], dbname=env["POSTGRES_DBNAME"],
            user=env["POSTGRES_USER"] or None, password=env["POSTGRES_PASSWORD"] or None,
            connect_timeout=int(env.get("POSTGRES_CONNECT_TIMEOUT", "5")))
    except psycopg.Error as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ConfigError(f"cannot connect to {location.shown}: {reason[:300]}") from None
    with conn:
        schema = env.get("POSTGRES_SCHEMA") or "public"
        found = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{EVENTS_TABLE}"',)
                             ).fetchone()
        role_found = role and conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                           (role,)).fetchone()
    if role and not role_found:
        raise UsageError(f"--app-role {role}: no such role on the server (create it first: "
                         f"CREATE ROLE {role} LOGIN PASSWORD '…'); nothing was written")
    if need_ledger and not (found and found[0]):
        raise UsageError(f"no ledger at {location.shown}: the database has no claimledger "
                         "tables; run `claimledger init` first")
