"""The cohort view's tables: every SQL statement the cohort report runs.

A :class:`CohortView` is an eventsourcing ``TrackingRecorder`` with tables of its own that
stores the cohort's dated facts (:class:`Change` rows) together with the tracking position
in one transaction; ``audit/cohort.py`` turns events into changes and changes into the
report. The view lives in the ledger's database (SQLite file or PostgreSQL schema).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from eventsourcing.persistence import (
    InfrastructureFactory,
    PersistenceError,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder
from eventsourcing.utils import Environment
from psycopg.sql import SQL

from ..errors import ConfigError
from .location import APP_NAME

if TYPE_CHECKING:
    from .location import Location

VIEW_NAME = "cohort"
TRACKING_TABLE = f"{VIEW_NAME}_tracking"


class Change(NamedTuple):
    """One keyed change to the view: ``kind`` names the statement, ``params`` its values."""

    kind: str
    params: tuple[Any, ...]



VIEW_TABLES = {
    "cohort_families": "family_ref TEXT PRIMARY KEY, identified_on TEXT NOT NULL, "
                       "event_id TEXT NOT NULL",
    "cohort_attachments": "event_id TEXT PRIMARY KEY, family_ref TEXT NOT NULL, "
                          "attached_on TEXT NOT NULL",
    "cohort_indicators": "event_id TEXT PRIMARY KEY, family_ref TEXT NOT NULL, "
                         "problem TEXT NOT NULL, stage TEXT NOT NULL, observed_on TEXT NOT NULL",
    "cohort_claims": "claim_id TEXT PRIMARY KEY, family_ref TEXT NOT NULL, route TEXT NOT NULL, "
                     "claimed_on TEXT NOT NULL",
    "cohort_claim_states": "claim_id TEXT NOT NULL, version INTEGER NOT NULL, "
                           "state TEXT NOT NULL, on_date TEXT NOT NULL, "
                           "PRIMARY KEY (claim_id, version)",
}
VIEW_INDEXES = (  # (index, table, columns)
    ("cohort_indicators_family", "cohort_indicators", "family_ref"),
    ("cohort_attachments_family", "cohort_attachments", "family_ref"),
)

# Written with "?" placeholders and {table} names; each backend substitutes its own.
CHANGE_SQL: dict[str, list[str]] = {
    "family": ["INSERT INTO {cohort_families} (family_ref, identified_on, event_id) "
               "VALUES (?, ?, ?) ON CONFLICT (family_ref) DO UPDATE SET "
               "identified_on = excluded.identified_on, event_id = excluded.event_id"],
    "attachment": ["INSERT INTO {cohort_attachments} (event_id, family_ref, attached_on) "
                   "VALUES (?, ?, ?) ON CONFLICT (event_id) DO UPDATE SET "
                   "attached_on = excluded.attached_on"],
    "indicator": ["INSERT INTO {cohort_indicators} (event_id, family_ref, problem, stage, "
                  "observed_on) VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id) DO UPDATE SET "
                  "problem = excluded.problem, stage = excluded.stage, "
                  "observed_on = excluded.observed_on"],
    "erase": ["DELETE FROM {cohort_families} WHERE family_ref = ?",
              "DELETE FROM {cohort_attachments} WHERE family_ref = ?",
              "DELETE FROM {cohort_indicators} WHERE family_ref = ?"],
    "retract": ["DELETE FROM {cohort_families} WHERE event_id = ?",
                "DELETE FROM {cohort_attachments} WHERE event_id = ?",
                "DELETE FROM {cohort_indicators} WHERE event_id = ?"],
    "claim": ["INSERT INTO {cohort_claims} (claim_id, family_ref, route, claimed_on) "
              "VALUES (?, ?, ?, ?) ON CONFLICT (claim_id) DO UPDATE SET "
              "route = excluded.route, claimed_on = excluded.claimed_on"],
    "claim_state": ["INSERT INTO {cohort_claim_states} (claim_id, version, state, on_date) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (claim_id, version) DO UPDATE SET "
                    "state = excluded.state, on_date = excluded.on_date"],
}

# The cohort as of a date is the families identified on or before it; problems and attachment
# are counted within that cohort. Every date is an ISO string, so text order is date order.
REPORT_SQL = {
    "identified": "SELECT COUNT(*) AS n FROM {cohort_families} WHERE identified_on <= ?",
    "attached": "SELECT COUNT(DISTINCT f.family_ref) AS n FROM {cohort_families} f "
                "JOIN {cohort_attachments} a ON a.family_ref = f.family_ref "
                "WHERE f.identified_on <= ? AND a.attached_on <= ?",
    "problems": "SELECT i.problem AS problem, i.stage AS stage, "
                "COUNT(DISTINCT i.family_ref) AS n FROM {cohort_indicators} i "
                "JOIN {cohort_families} f ON f.family_ref = i.family_ref "
                "WHERE f.identified_on <= ? AND i.observed_on <= ? GROUP BY i.problem, i.stage",
    "problem_families": "SELECT i.problem AS problem, COUNT(DISTINCT i.family_ref) AS n "
                        "FROM {cohort_indicators} i JOIN {cohort_families} f "
                        "ON f.family_ref = i.family_ref WHERE f.identified_on <= ? "
                        "AND i.observed_on <= ? GROUP BY i.problem",
    "claims": "SELECT c.route AS route, COALESCE((SELECT s.state FROM {cohort_claim_states} s "
              "WHERE s.claim_id = c.claim_id AND s.on_date <= ? ORDER BY s.version DESC "
              "LIMIT 1), 'submitted') AS state, COUNT(*) AS n FROM {cohort_claims} c "
              "WHERE c.claimed_on <= ? GROUP BY 1, 2",
}


class CohortView(TrackingRecorder):
    """The materialised cohort: dated facts plus the tracked ledger position."""

    @abstractmethod
    def apply(self, changes: Sequence[Change], tracking: Tracking) -> None:
        """Apply the changes and record the tracking position in one transaction."""

    @abstractmethod
    def query(self, name: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        """Run one of :data:`REPORT_SQL` in a read transaction."""

    @abstractmethod
    def drop(self) -> None:
        """Drop the view's tables and its tracking, then create them empty."""


class _SQLView:
    """What both backends share: statements with table names and placeholders filled in."""

    placeholder = "?"

    def apply(self, changes: Sequence[Change], tracking: Tracking) -> None:
        """The view's changes and the tracking position, in one transaction."""
        with self.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
            self._run_changes(c, changes)
            self._insert_tracking(c, tracking)  # type: ignore[attr-defined]

    def query(self, name: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            return self._rows(c, name, params)

    def _table(self, name: str) -> str:
        return name

    def _sql(self, text: str) -> str:
        names = {t: self._table(t) for t in VIEW_TABLES}
        return text.format(**names).replace("?", self.placeholder)

    def _run_changes(self, cursor: Any, changes: Iterable[Change]) -> None:
        statements = {k: [self._sql(s) for s in v] for k, v in CHANGE_SQL.items()}
        for change in changes:
            for statement in statements[change.kind]:
                cursor.execute(statement, change.params)

    def _rows(self, cursor: Any, name: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        cursor.execute(self._sql(REPORT_SQL[name]), params)
        return [dict(row) for row in cursor.fetchall()]


class SQLiteCohortView(_SQLView, SQLiteTrackingRecorder, CohortView):
    """The view in the ledger's SQLite file, with its own tracking table.

    eventsourcing's SQLite tracking table is always called ``tracking``; the cohort keeps
    its position in ``cohort_tracking`` instead, so another view in the same file can follow
    the same application without sharing (and overwriting) its row.
    """

    def __init__(self, datastore: Any, **kwargs: Any):
        super().__init__(datastore, **kwargs)
        if not self.datastore.single_row_tracking:
            raise ConfigError("the cohort view needs eventsourcing's single-row tracking")
        self.insert_tracking_statement = (
            f"INSERT INTO {TRACKING_TABLE} VALUES (:application_name, :notification_id) "
            "ON CONFLICT (application_name) DO UPDATE SET notification_id = :notification_id "
            f"WHERE {TRACKING_TABLE}.notification_id < :notification_id "
            "RETURNING notification_id"
        )
        self.select_max_tracking_id_statement = (
            f"SELECT MAX(notification_id) FROM {TRACKING_TABLE} WHERE application_name=?"
        )

    def construct_create_table_statements(self) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {TRACKING_TABLE} (application_name TEXT, "
            "notification_id INTEGER, PRIMARY KEY (application_name)) WITHOUT ROWID",
            *(f"CREATE TABLE IF NOT EXISTS {t} ({cols})" for t, cols in VIEW_TABLES.items()),
            *(f"CREATE INDEX IF NOT EXISTS {i} ON {t} ({cols})" for i, t, cols in VIEW_INDEXES),
        ]

    def drop(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            for t in (*VIEW_TABLES, TRACKING_TABLE):
                c.execute(f"DROP TABLE IF EXISTS {t}")
        self.tracking_table_exists = False
        self.tracking_migration_previous = self.tracking_migration_current = None
        self.create_table()


class PostgresCohortView(_SQLView, PostgresTrackingRecorder, CohortView):
    """The view in the ledger's PostgreSQL database (tracking table ``cohort_tracking``)."""

    placeholder = "%s"

    def __init__(self, datastore: Any, *, tracking_table_name: str = TRACKING_TABLE,
                 **kwargs: Any):
        super().__init__(datastore, tracking_table_name=tracking_table_name, **kwargs)
        for t, cols in VIEW_TABLES.items():
            self.sql_create_statements.append(
                SQL(f"CREATE TABLE IF NOT EXISTS {self._table(t)} ({cols})"))  # type: ignore[arg-type]
        for i, t, cols in VIEW_INDEXES:
            self.sql_create_statements.append(SQL(
                f"CREATE INDEX IF NOT EXISTS {i} ON {self._table(t)} ({cols})"))  # type: ignore[arg-type]

    def _table(self, name: str) -> str:
        return f'"{self.datastore.schema}"."{name}"'

    def drop(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            for t in (*VIEW_TABLES, self.tracking_table_name):
                c.execute(f"DROP TABLE IF EXISTS {self._table(t)}")
        self.tracking_table_exists = False
        self.tracking_migration_previous = self.tracking_migration_current = None
        self.create_table()


def open_view(location: Location) -> CohortView:
    """The cohort view in the ledger's database, created if missing.

    Built the way eventsourcing's ProjectionRunner builds a view: an infrastructure factory
    for the environment named after the projection, so the view has its own connections and
    outlives any one application object. Tables are created only when they are missing, so a
    role that may use but not create them (views made by an administrator) can still report.
    """
    env = Environment(VIEW_NAME, {**location.env, "CREATE_TABLE": "false"})
    cls = SQLiteCohortView if location.backend == "sqlite" else PostgresCohortView
    view: CohortView = InfrastructureFactory.construct(env).tracking_recorder(cls)  # type: ignore[arg-type,assignment]
    try:
        view.max_tracking_id(APP_NAME)
    except PersistenceError:
        try:
            view.create_table()
        except PersistenceError as e:  # e.g. a role that may not create tables
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ConfigError(f"cannot create the cohort view at {location.url}: {reason}"
                              ) from None
    return view
