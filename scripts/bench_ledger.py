"""Ledger benchmarks: ingest and verify throughput against their baselines, and memory.

One run on one synthetic county (``claimledger.synth.generate``, the demo's generator):

- **ingest**: the eleven data-match files through ``claimledger.ingest.importer.ingest`` into a
  fresh SQLite ledger (``init`` first), in one application, as one
  ``claimledger ingest KIND FILE KIND FILE ...`` command (and the demo) loads them; and, for
  reference, again into another fresh ledger with one application per file, as eleven
  separate ``claimledger ingest KIND FILE`` commands would;
- **physical baseline**: raw ``sqlite3`` ``executemany`` of the very rows the ledger stored
  (originator_id, originator_version, topic, state, read back from its table) into a fresh
  table with the same primary key, one transaction;
- **library baseline**: eventsourcing's plain one-``save()``-per-family path for the same
  events, file by file as ingest loads them: each event's type and payload is read from the
  ledger (untimed); then, timed, for each of the eleven files in order, each family it
  touches is got from the repository (replayed; created by the families file), the file's
  events for it are triggered on a plain ``eventsourcing`` aggregate and it is saved with one
  ``save()``, through a plain ``eventsourcing.application.Application`` (default JSON mapper,
  no cipher, no hashing) on a fresh SQLite file. For reference the table also gives the
  ledger's own event objects, decoded beforehand, saved one ``save()`` per family with all
  of the family's events at once (no replay, no building);
- **verify**: ``LedgerApp.verify`` (every hash, link, Merkle root and the signature of one
  checkpoint sealed after ingest), twice: with the master key at hand, as on the council's
  server (every sealed payload is then decrypted and its digest checked too), and as an
  auditor holding only the public key and the witness (sealed payloads are counted: their
  digests stay bound by the hashes), each against a raw scan
  (``SELECT state ... ORDER BY rowid``) plus SHA-256 of the same stored bytes;
- **memory**: peak RSS (``ru_maxrss``) of a separate ``export`` and a separate ``verify``,
  each in its own process, at two county sizes.

Figures are measurements on the machine at hand, not assertions: the table says PASS or MISS
against each target of the issue. Usage::

    .venv/bin/python scripts/bench_ledger.py [--families 3000] [--seed 2015] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import io
import json
import os
import platform
import pstats
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import StoredEvent

from claimledger.application import Settings, open_app
from claimledger.domain.family import EVENT_FOR_KIND, Family
from claimledger.ingest.importer import finish, ingest, prepare
from claimledger.ledger.envelope import stream_uuid
from claimledger.store.writer import PG_COPY_TYPES
from claimledger.synth import KINDS, generate

#: The issue's targets (benchmark figures, not timed tests).
INGEST_MIN_EVENTS_PER_S = 25_000
INGEST_MIN_VS_RAW = 0.6
INGEST_MIN_VS_EVENTSOURCING = 3.0
VERIFY_MIN_EVENTS_PER_S = 100_000
VERIFY_MIN_VS_RAW = 0.5
MEMORY_MAX_MB = 300
#: "Flat": the larger county's peak may exceed the smaller's by at most this fraction.
MEMORY_FLAT_TOLERANCE = 0.25
DEMO_SEED = 2015
_FAMILY_CHUNK = 250


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu or platform.processor(),
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def peak_kib_of_self() -> int:
    """This process's own peak resident set (VmHWM, KiB). ``ru_maxrss`` would do, except that
    in a child started by fork/vfork + exec it also carries the parent's peak."""
    import resource

    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _settings(db: str, keys: Path, actor: str) -> Settings:
    return Settings(db=db, key_dir=keys, actor=actor)


def _fresh(path: Path) -> Path:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def build_ledger(workdir: Path, families: int, seed: int,
                 prof: cProfile.Profile | None = None, *, one_app_per_file: bool = False,
                 name: str = "ledger", db: str | None = None) -> dict[str, Any]:
    """Synthesise a county (the same files each time), initialise a fresh ledger (a SQLite
    file, or the empty database ``db``), ingest the eleven files, in one application or one
    per file; only the ingest is timed (and profiled, given ``prof``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    county = generate(workdir / "county", families, seed)
    path = None if db else _fresh(workdir / f"{name}.sqlite")
    db = db or f"sqlite:///{path}"
    keys = workdir / f"{name}-keys" if name != "ledger" else workdir / "keys"
    shutil.rmtree(keys, ignore_errors=True)  # a fresh ledger's own keys (built again: best of)
    open_app(_settings(db, keys, "admin"), must_exist=False).init(county["authority"])
    events = 0
    if prof is not None:
        prof.enable()
    t0 = time.perf_counter()
    app = open_app(_settings(db, keys, "data-officer"))
    if not one_app_per_file:
        prepare(app, [workdir / "county" / f"{kind}.csv" for kind in KINDS])
    for kind in KINDS:
        if one_app_per_file:
            app = open_app(_settings(db, keys, "data-officer"))
        events += ingest(app, kind, workdir / "county" / f"{kind}.csv")["appended"]
        if one_app_per_file:
            finish(app)  # as each command ends
    finish(app)  # the writer's last checkpoint is part of the command
    seconds = time.perf_counter() - t0
    if prof is not None:
        prof.disable()
    return {"db": db, "path": path, "keys": keys, "families": families, "seed": seed,
            "family_refs": [f["family_ref"] for f in county["family_scenarios"]],
            "events": events, "seconds": seconds}


def raw_sqlite_insert(ledger_path: Path, out: Path) -> dict[str, Any]:
    """executemany of the ledger's stored rows into a fresh table with the same key."""
    with sqlite3.connect(ledger_path) as src:
        rows = src.execute("SELECT originator_id, originator_version, topic, state "
                           "FROM stored_events ORDER BY rowid").fetchall()
    conn = sqlite3.connect(_fresh(out))
    try:
        conn.execute("PRAGMA journal_mode=WAL")  # as eventsourcing's SQLite recorder runs
        conn.execute("CREATE TABLE stored_events (originator_id TEXT, originator_version "
                     "INTEGER, topic TEXT, state BLOB, PRIMARY KEY (originator_id, "
                     "originator_version))")
        t0 = time.perf_counter()
        with conn:
            conn.executemany("INSERT INTO stored_events VALUES (?, ?, ?, ?)", rows)
        seconds = time.perf_counter() - t0
    finally:
        conn.close()
    return {"rows": len(rows), "seconds": seconds}


class PlainApp(Application):  # type: ignore[type-arg]
    """eventsourcing as it comes: default mapper and transcoder, no cipher."""

    name = "plain"


class PlainFamily(Aggregate):
    """A family as plain eventsourcing models it: created with its registration, then one
    event per data-match record, each naming its kind and carrying the ledger's payload."""

    class Created(Aggregate.Created):
        kind: str
        payload: dict[str, Any]

    @event(Created)
    def __init__(self, kind: str, payload: dict[str, Any]) -> None:
        self.records = [kind]

    class Recorded(Aggregate.Event):
        kind: str
        payload: dict[str, Any]

        def apply(self, aggregate: Aggregate) -> None:
            aggregate.records.append(self.kind)  # type: ignore[attr-defined]


def _family_events(ledger: dict[str, Any]) -> Iterator[list[list[Any]]]:
    """Each family's domain events, decoded from the ledger a chunk of families at a time."""
    app = open_app(_settings(ledger["db"], ledger["keys"], "admin"))
    ids = [stream_uuid(Family.stream_name(ref)).hex for ref in ledger["family_refs"]]
    with sqlite3.connect(ledger["path"]) as conn:
        for i in range(0, len(ids), _FAMILY_CHUNK):
            chunk = ids[i: i + _FAMILY_CHUNK]
            marks = ",".join("?" * len(chunk))
            by_family: dict[str, list[Any]] = {}
            for oid, version, topic, state in conn.execute(
                f"SELECT originator_id, originator_version, topic, state FROM stored_events "
                f"WHERE originator_id IN ({marks}) ORDER BY originator_id, originator_version",
                chunk,
            ):
                stored = StoredEvent(uuid.UUID(oid), version, topic, state)
                by_family.setdefault(oid, []).append(app.mapper.to_domain_event(stored))
            yield list(by_family.values())


def eventsourcing_per_file_per_family(ledger: dict[str, Any], out: Path) -> dict[str, Any]:
    """The same events the plain eventsourcing way, file by file as ingest loads them: for
    each of the eleven files in order, each family it touches is got from the repository
    (its events so far replayed; created by the families file), the file's events for it
    are triggered, and it is saved: one save() (one transaction) per family per file. The
    getting, triggering and saving are timed; reading the payloads from the ledger is not."""
    _fresh(out)
    plain = PlainApp(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                          "SQLITE_DBNAME": str(out)})
    kind_of = {cls.__qualname__: kind for kind, cls in EVENT_FOR_KIND.items()}
    #: kind -> family ref -> [(event type, payload)], in ledger order
    by_kind: dict[str, dict[str, list[tuple[str, dict[str, Any]]]]] = {k: {} for k in KINDS}
    for chunk in _family_events(ledger):
        for evs in chunk:
            ref = evs[0].stream.split("/", 1)[1]
            for e in evs:
                type_ = type(e).__qualname__
                by_kind[kind_of[type_]].setdefault(ref, []).append((type_, e.payload()))
    ids: dict[str, Any] = {}
    events = saves = 0
    t0 = time.perf_counter()
    for kind in KINDS:
        for ref, records in by_kind[kind].items():
            if ref in ids:
                family = plain.repository.get(ids[ref])
            else:
                (type_, payload), *records = records
                family = PlainFamily(kind=type_, payload=payload)
                ids[ref] = family.id
                events += 1
            for type_, payload in records:
                family.trigger_event(PlainFamily.Recorded, kind=type_, payload=payload)
            events += len(records)
            plain.save(family)
            saves += 1
    seconds = time.perf_counter() - t0
    return {"events": events, "families": len(ids), "saves": saves, "seconds": seconds}


def eventsourcing_save_per_family(ledger: dict[str, Any], out: Path) -> dict[str, Any]:
    """For reference: the ledger's own event objects (decoded beforehand, all of a family's
    at once) saved through a plain eventsourcing Application, one save() per family; only
    the saving is timed (no replay, no building)."""
    _fresh(out)
    plain = PlainApp(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                          "SQLITE_DBNAME": str(out)})
    events = families = 0
    seconds = 0.0
    for chunk in _family_events(ledger):
        t0 = time.perf_counter()
        for family_events in chunk:
            plain.save(*family_events)
        seconds += time.perf_counter() - t0
        families += len(chunk)
        events += sum(len(e) for e in chunk)
    return {"events": events, "families": families, "seconds": seconds}


def raw_scan_sha256(ledger_path: Path) -> dict[str, Any]:
    """SELECT state in ledger order and SHA-256 each: the floor under any verify."""
    conn = sqlite3.connect(ledger_path)
    try:
        t0 = time.perf_counter()
        n = 0
        sha256 = hashlib.sha256
        for (state,) in conn.execute("SELECT state FROM stored_events ORDER BY rowid"):
            sha256(state).digest()
            n += 1
        seconds = time.perf_counter() - t0
    finally:
        conn.close()
    return {"rows": n, "seconds": seconds}


def auditor_keys(ledger: dict[str, Any]) -> Path:
    """A key directory as an auditor away from the council's server holds it: the ledger's
    public signing key and its witness, no master key."""
    keys = Path(ledger["keys"])
    out = keys.parent / f"{keys.name}-auditor"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    for name in ("signing.pub", "witness.json"):
        shutil.copy2(keys / name, out / name)
    return out


def verify_ledger(ledger: dict[str, Any], jobs: int | None = None, *,
                  master_key: bool = True) -> dict[str, Any]:
    """LedgerApp.verify as the `verify` command runs it; ``jobs`` None is the command's
    default (one process per CPU for a large ledger). ``master_key``: with the key at hand
    (every sealed payload is decrypted and its digest checked), else as an auditor without
    it (every hash, link, Merkle root and signature; sealed payloads counted)."""
    from claimledger.parallel_verify import jobs_for

    keys = ledger["keys"] if master_key else auditor_keys(ledger)
    app = open_app(_settings(ledger["db"], keys, "admin"))
    if (app.payload_checks()[0] is not None) != master_key:
        raise SystemExit(f"{keys}: the master key is {'not ' if master_key else ''}usable "
                         "here (is CLAIMLEDGER_MASTER_KEY_FILE set?)")
    used = jobs_for(app) if jobs is None else jobs
    t0 = time.perf_counter()
    result = app.verify(jobs=used)
    seconds = time.perf_counter() - t0
    return {"events": result.events, "ok": result.ok, "checkpoints": result.checkpoints,
            "unchecked_payloads": result.unchecked_payloads, "seconds": seconds,
            "failure": result.reasons, "jobs": used}


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return min(runs, key=lambda r: r["seconds"])


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def run_ingest_verify(families: int = 3000, seed: int = DEMO_SEED,
                      workdir: Path | None = None, repeat: int = 5) -> dict[str, Any]:
    """Ingest a county and verify it, with both baselines, in one run.

    The raw baselines and verify are timed ``repeat`` times, ingest up to 3 times (each
    into a fresh ledger; the last one built is the one the rest measures), the best run of
    each kept; the eventsourcing baselines, a minute or more each, once. Returns plain data:
    events/s and ratios per figure.
    """
    work = Path(tempfile.mkdtemp(prefix="bench-ledger-")) if workdir is None else workdir
    builds = [build_ledger(work / f"county-{families}", families, seed)
              for _ in range(max(1, min(repeat, 3)))]
    ledger = {**builds[-1], "seconds": min(b["seconds"] for b in builds),
              "runs": [round(b["seconds"], 3) for b in builds]}
    per_file = build_ledger(work / f"county-{families}", families, seed, one_app_per_file=True,
                            name="per-file")
    open_app(_settings(ledger["db"], ledger["keys"], "admin")).seal()
    raw = _best([raw_sqlite_insert(ledger["path"], work / "raw.sqlite") for _ in range(repeat)])
    lib = eventsourcing_per_file_per_family(ledger, work / "plain.sqlite")
    floor = eventsourcing_save_per_family(ledger, work / "plain-floor.sqlite")
    scan = _best([raw_scan_sha256(ledger["path"]) for _ in range(repeat)])
    ver = _best([verify_ledger(ledger) for _ in range(repeat)])
    ver1 = _best([verify_ledger(ledger, jobs=1) for _ in range(repeat)])
    nokey = _best([verify_ledger(ledger, master_key=False) for _ in range(repeat)])
    ingest_rate = _rate(ledger["events"], ledger["seconds"])
    raw_rate = _rate(raw["rows"], raw["seconds"])
    lib_rate = _rate(lib["events"], lib["seconds"])
    verify_rate = _rate(ver["events"], ver["seconds"])
    nokey_rate = _rate(nokey["events"], nokey["seconds"])
    scan_rate = _rate(scan["rows"], scan["seconds"])
    return {
        "workdir": str(work),
        "families": families,
        "seed": seed,
        "ledger": ledger["db"],
        "ingest": {"events": ledger["events"], "seconds": ledger["seconds"],
                   "runs": ledger["runs"], "events_per_s": ingest_rate},
        "ingest_per_file": {"events": per_file["events"], "seconds": per_file["seconds"],
                            "events_per_s": _rate(per_file["events"], per_file["seconds"])},
        "raw_sqlite": {**raw, "events_per_s": raw_rate},
        "eventsourcing": {**lib, "events_per_s": lib_rate},
        "eventsourcing_save_only": {**floor,
                                    "events_per_s": _rate(floor["events"], floor["seconds"])},
        "verify": {**ver, "events_per_s": verify_rate},
        "verify_one_process": {**ver1, "events_per_s": _rate(ver1["events"], ver1["seconds"])},
        "verify_without_master_key": {**nokey, "events_per_s": nokey_rate},
        "raw_scan": {**scan, "events_per_s": scan_rate},
        "ratios": {"ingest_vs_raw_sqlite": ingest_rate / raw_rate,
                   "ingest_vs_eventsourcing": ingest_rate / lib_rate,
                   "ingest_vs_eventsourcing_save_only":
                       ingest_rate / _rate(floor["events"], floor["seconds"]),
                   "verify_vs_raw_scan": verify_rate / scan_rate,
                   "verify_without_master_key_vs_raw_scan": nokey_rate / scan_rate},
    }


_CHILD = """
import json, resource, sys
from pathlib import Path
from claimledger.application import Settings, open_app
from claimledger.transfer import export_ledger

def peak_kib():
    # VmHWM: this process's own peak. ru_maxrss would do, except that in a child started by
    # fork/vfork + exec it also carries the parent's peak across the exec.
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

db, keys, what, out, stop = sys.argv[1:6]
app = open_app(Settings(db=db, key_dir=Path(keys), actor="admin"))
app.ledger()
r = {"events": 0, "ok": True, "startup_kib": peak_kib()}
if what == "export":
    r["events"] = export_ledger(app, Path(out))["exported"]
elif what == "verify" and stop == "0":
    v = app.verify(jobs=1)  # one process: the streaming model whose memory is measured
    r.update(events=v.events, ok=v.ok)
elif what == "verify":  # the ledger's first events only: the same families, fewer events
    from claimledger.ledger.verify import verify_rows
    digest, opener = app.payload_checks()
    v = verify_rows(app.scan(1, int(stop)), digest=digest, opener=opener)
    r.update(events=v.events, ok=v.ok)
r["peak_kib"] = peak_kib()
print(json.dumps(r))
"""


def peak_rss(db: str, keys: Path, what: str, out: Path, stop: int = 0) -> dict[str, Any]:
    """Run ``export`` or ``verify`` of a ledger in a fresh interpreter; its own peak resident
    set size in MB, and what it held after start-up (imports, open ledger) before the work."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, db, str(keys), what, str(out),
                           str(stop)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} subprocess failed: {proc.stderr.strip()[-500:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"events": r["events"], "ok": r["ok"], "peak_mb": r["peak_kib"] / 1024,
            "startup_mb": r["startup_kib"] / 1024}


def run_memory(sizes: tuple[int, ...] = (750, 3000), seed: int = DEMO_SEED,
               workdir: Path | None = None, ledgers: dict[int, dict[str, Any]] | None = None
               ) -> dict[str, Any]:
    """Peak RSS of export and verify, each in its own process, per county size. ``ledgers``
    may supply already-built ledgers by size (from :func:`run_ingest_verify`)."""
    work = Path(tempfile.mkdtemp(prefix="bench-ledger-")) if workdir is None else workdir
    out: dict[str, Any] = {"sizes": []}
    for families in sizes:
        ledger = (ledgers or {}).get(families) or build_ledger(
            work / f"county-{families}", families, seed)
        db, keys = ledger["db"], ledger["keys"]
        row: dict[str, Any] = {"families": families}
        for what in ("export", "verify"):
            row[what] = peak_rss(db, keys, what, work / f"export-{families}.jsonl")
        row["events"] = row["verify"]["events"]
        (work / f"export-{families}.jsonl").unlink(missing_ok=True)
        out["sizes"].append(row)
    # Flat in events: the largest ledger verified over its first quarter of events and over
    # all of them (the same families, streams and keys; four times the events).
    largest = out["sizes"][-1]
    quarter = max(largest["events"] // 4, 1)
    out["events_flat"] = {
        "families": largest["families"],
        "quarter": peak_rss(db, keys, "verify", work / "unused.jsonl", stop=quarter),
        "all": largest["verify"]}
    return out


#: A table of the shape eventsourcing's PostgreSQL recorder gives the ledger's events (same
#: columns, key and notification-id index), for the raw baselines.
_PG_RAW_TABLE = (
    "DROP TABLE IF EXISTS raw_events",
    "CREATE TABLE raw_events (originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
    "topic text, state bytea, notification_id bigserial, "
    "PRIMARY KEY (originator_id, originator_version))",
    "CREATE UNIQUE INDEX raw_events_notification_id ON raw_events (notification_id)",
)


def _libpq(url: str, database: str | None = None) -> str:
    """``url`` (any SQLAlchemy PostgreSQL spelling) as psycopg connects to it, optionally to
    another database of the same server."""
    from sqlalchemy.engine import make_url

    u = make_url(url).set(drivername="postgresql")
    return (u.set(database=database) if database else u).render_as_string(hide_password=False)


@contextlib.contextmanager
def pg_database(server: str) -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL server of ``server`` (a URL whose role may
    create databases), dropped when the block ends."""
    import psycopg

    name = "claimledger_bench_" + uuid.uuid4().hex[:12]
    with psycopg.connect(_libpq(server), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield _libpq(server, name)
    finally:
        with psycopg.connect(_libpq(server), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def raw_pg_insert(db: str, rows: list[tuple[Any, ...]], *, copy: bool) -> dict[str, Any]:
    """The stored rows into a fresh table of the ledger's shape, one transaction: psycopg's
    binary COPY (as ingest inserts on PostgreSQL) or, for reference, its executemany."""
    import psycopg

    with psycopg.connect(db) as conn:
        for statement in _PG_RAW_TABLE:
            conn.execute(statement)
        conn.commit()
        columns = "raw_events (originator_id, originator_version, topic, state)"
        t0 = time.perf_counter()
        with conn.cursor() as c:
            if copy:
                with c.copy(f"COPY {columns} FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types(PG_COPY_TYPES)
                    for row in rows:
                        cp.write_row(row)
            else:
                c.executemany(f"INSERT INTO {columns} VALUES (%s, %s, %s, %s)", rows)
        conn.commit()
        seconds = time.perf_counter() - t0
    return {"rows": len(rows), "seconds": seconds}


def raw_pg_scan(db: str, table: str) -> dict[str, Any]:
    """SELECT state in ledger order through a server-side cursor, and SHA-256 each."""
    import psycopg

    with psycopg.connect(db) as conn, conn.cursor(name="raw_scan") as c:
        c.itersize = 5000
        sha256 = hashlib.sha256
        n = 0
        t0 = time.perf_counter()
        c.execute(f"SELECT state FROM {table} ORDER BY notification_id")
        for (state,) in c:
            sha256(state).digest()
            n += 1
        seconds = time.perf_counter() - t0
    return {"rows": n, "seconds": seconds}


def run_postgres(server: str, families: int = 3000, seed: int = DEMO_SEED,
                 workdir: Path | None = None, repeat: int = 5) -> dict[str, Any]:
    """The multi-user path, on the PostgreSQL server of ``server``: the same county ingested
    by one command into a fresh database (best of 2), against psycopg's binary COPY of the
    very rows it stored into a table of the same shape (and, for reference, an
    executemany); verify with and without the master key, against a raw scan + SHA-256.
    The server runs on this machine, so it shares the two cores. The targets are for
    the embedded default; these figures have none. Every database made is dropped."""
    import psycopg

    work = Path(tempfile.mkdtemp(prefix="bench-ledger-")) if workdir is None else workdir
    with contextlib.ExitStack() as stack:
        builds = [build_ledger(work / f"county-{families}", families, seed, name="pg",
                               db=stack.enter_context(pg_database(server)))
                  for _ in range(max(1, min(repeat, 2)))]
        ledger = builds[-1]
        app = open_app(_settings(ledger["db"], ledger["keys"], "admin"))
        app.seal()
        table = app.recorder.events_table_name  # type: ignore[attr-defined]
        with psycopg.connect(ledger["db"]) as conn:
            version = conn.info.server_version
            rows = conn.execute(f"SELECT originator_id, originator_version, topic, state FROM "
                                f"{table} ORDER BY notification_id").fetchall()
        raw_db = stack.enter_context(pg_database(server))
        copy = _best([raw_pg_insert(raw_db, rows, copy=True) for _ in range(repeat)])
        many = _best([raw_pg_insert(raw_db, rows, copy=False)
                      for _ in range(max(1, min(repeat, 2)))])
        scan = _best([raw_pg_scan(ledger["db"], table) for _ in range(repeat)])
        ver = _best([verify_ledger(ledger) for _ in range(repeat)])
        nokey = _best([verify_ledger(ledger, master_key=False) for _ in range(repeat)])
    seconds = min(b["seconds"] for b in builds)
    figures = {"ingest": {"events": ledger["events"], "seconds": seconds,
                          "runs": [round(b["seconds"], 3) for b in builds]},
               "raw_copy": copy, "raw_executemany": many, "verify": ver,
               "verify_without_master_key": nokey, "raw_scan": scan}
    for f in figures.values():
        f["events_per_s"] = _rate(f.get("events", f.get("rows", 0)), f["seconds"])
    rate = {k: f["events_per_s"] for k, f in figures.items()}
    return {"server_version": f"{version // 10000}.{version % 10000}", **figures,
            "ratios": {"ingest_vs_raw_copy": rate["ingest"] / rate["raw_copy"],
                       "verify_vs_raw_scan": rate["verify"] / rate["raw_scan"],
                       "verify_without_master_key_vs_raw_scan":
                           rate["verify_without_master_key"] / rate["raw_scan"]}}


def format_postgres(pg: dict[str, Any]) -> str:
    """The PostgreSQL figures as a markdown table, ratios after."""
    lines = [f"PostgreSQL {pg['server_version']} on this machine (the multi-user path; no "
             "targets)", "", "| measurement | events | seconds | events/s |",
             "|---|---:|---:|---:|"]
    for label, key in (
        (f"ingest (one command, 11 files, fresh database; best of "
         f"{len(pg['ingest']['runs'])})", "ingest"),
        ("raw psycopg binary COPY of the stored rows", "raw_copy"),
        ("(reference) raw psycopg executemany of the stored rows", "raw_executemany"),
        (f"verify with the master key, {pg['verify']['jobs']} processes", "verify"),
        (f"verify without the master key, {pg['verify_without_master_key']['jobs']} processes",
         "verify_without_master_key"),
        ("raw scan + SHA-256 of the stored bytes", "raw_scan"),
    ):
        f = pg[key]
        n = f.get("events", f.get("rows"))
        lines.append(f"| {label} | {n:,} | {f['seconds']:.2f} | {f['events_per_s']:,.0f} |")
    r = pg["ratios"]
    lines += ["", f"ingest / raw COPY: {r['ingest_vs_raw_copy']:.2f} x; verify / raw scan: "
                  f"{r['verify_vs_raw_scan']:.2f} x with the master key, "
                  f"{r['verify_without_master_key_vs_raw_scan']:.2f} x without"]
    return "\n".join(lines)


def _ledger_of(result: dict[str, Any]) -> dict[str, Any]:
    """The ledger a :func:`run_ingest_verify` result measured, for :func:`run_memory`."""
    path = Path(result["ledger"].removeprefix("sqlite:///"))
    return {"db": result["ledger"], "path": path, "keys": path.parent / "keys"}


def run(families: int = 3000, seed: int = DEMO_SEED, memory_sizes: tuple[int, ...] | None = None,
        workdir: Path | None = None, repeat: int = 5, pg: str | None = None) -> dict[str, Any]:
    """Everything: throughput at ``families`` and memory at two sizes (by default a quarter
    of the county and the county itself, whose ledger is reused); with ``pg`` (a PostgreSQL
    server's URL) the multi-user path's throughput too."""
    work = Path(tempfile.mkdtemp(prefix="bench-ledger-")) if workdir is None else workdir
    result = run_ingest_verify(families, seed, work, repeat)
    sizes = memory_sizes or (max(families // 4, 1), families)
    result["memory"] = run_memory(sizes, seed, work, {families: _ledger_of(result)})
    if pg:
        result["postgres"] = run_postgres(pg, families, seed, work, repeat)
    result["machine"] = machine()
    result["targets"] = targets(result)
    return result


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Each of the issue's targets with the measured figure and PASS or MISS."""
    rows: list[dict[str, Any]] = []

    def add(name: str, measured: float, target: float, ok: bool, unit: str) -> None:
        rows.append({"target": name, "measured": measured, "required": target, "unit": unit,
                     "verdict": "PASS" if ok else "MISS"})

    ing, ver, ratios = r["ingest"], r["verify"], r["ratios"]
    add("ingest events/s", ing["events_per_s"], INGEST_MIN_EVENTS_PER_S,
        ing["events_per_s"] >= INGEST_MIN_EVENTS_PER_S, "events/s")
    add("ingest / raw SQLite executemany", ratios["ingest_vs_raw_sqlite"], INGEST_MIN_VS_RAW,
        ratios["ingest_vs_raw_sqlite"] >= INGEST_MIN_VS_RAW, "x")
    add("ingest / eventsourcing get + trigger + save() per family per file",
        ratios["ingest_vs_eventsourcing"],
        INGEST_MIN_VS_EVENTSOURCING,
        ratios["ingest_vs_eventsourcing"] >= INGEST_MIN_VS_EVENTSOURCING, "x")
    add("verify events/s, with the master key", ver["events_per_s"], VERIFY_MIN_EVENTS_PER_S,
        ver["events_per_s"] >= VERIFY_MIN_EVENTS_PER_S and ver["ok"], "events/s")
    add("verify / raw scan + SHA-256, with the master key", ratios["verify_vs_raw_scan"],
        VERIFY_MIN_VS_RAW, ratios["verify_vs_raw_scan"] >= VERIFY_MIN_VS_RAW, "x")
    nokey = r["verify_without_master_key"]
    add("verify events/s, without the master key", nokey["events_per_s"],
        VERIFY_MIN_EVENTS_PER_S,
        nokey["events_per_s"] >= VERIFY_MIN_EVENTS_PER_S and nokey["ok"], "events/s")
    add("verify / raw scan + SHA-256, without the master key",
        ratios["verify_without_master_key_vs_raw_scan"], VERIFY_MIN_VS_RAW,
        ratios["verify_without_master_key_vs_raw_scan"] >= VERIFY_MIN_VS_RAW, "x")
    mem = r.get("memory")
    if mem and mem["sizes"]:
        peak = max(max(s["export"]["peak_mb"], s["verify"]["peak_mb"]) for s in mem["sizes"])
        add("peak RSS of export / verify", peak, MEMORY_MAX_MB, peak < MEMORY_MAX_MB, "MB")
        flat = mem.get("events_flat")
        if flat:
            q, a = flat["quarter"], flat["all"]
            growth = _work_mb(a) / _work_mb(q) - 1
            add(f"memory flat in events: verify's peak above start-up, first {q['events']:,} "
                f"-> all {a['events']:,} events of the {flat['families']}-family ledger",
                growth, MEMORY_FLAT_TOLERANCE, growth <= MEMORY_FLAT_TOLERANCE, "fraction")
    return rows


def _work_mb(m: dict[str, Any]) -> float:
    """What the work itself added to the process's peak (at least 1 MB: page-size noise)."""
    return max(m["peak_mb"] - m["startup_mb"], 1.0)


def format_table(r: dict[str, Any]) -> str:
    """The figures and the targets as plain text (markdown tables)."""
    def num(x: float) -> str:
        return f"{x:,.0f}"

    lines = [f"claimledger benchmarks: {r['families']} families (seed {r['seed']}), "
             f"{num(r['ingest']['events'])} ingested events"]
    m = r.get("machine")
    if m:
        lines.append(f"machine: {m['nproc']} CPUs, {m['cpu']}, Python {m['python']}, "
                     f"SQLite {m['sqlite']}, load average {m['load_average']}")
    lines += ["", "| measurement | events | seconds | events/s |", "|---|---:|---:|---:|"]
    for label, key, n in (
        (f"ingest (one command, 11 files, fresh SQLite ledger; best of "
         f"{len(r['ingest'].get('runs') or [1])})", "ingest", "events"),
        ("(reference) ingest, 11 commands of one file each", "ingest_per_file", "events"),
        ("raw sqlite3 executemany of the stored rows", "raw_sqlite", "rows"),
        ("eventsourcing, get + trigger + one save() per family per file", "eventsourcing",
         "events"),
        ("(reference) eventsourcing, one save() per family of pre-built events",
         "eventsourcing_save_only", "events"),
        (f"verify with the master key (hashes, links, decrypted payload digests, Merkle, "
         f"signature), {r['verify']['jobs']} processes", "verify", "events"),
        ("(reference) verify with the master key in one process", "verify_one_process",
         "events"),
        (f"verify without the master key (hashes, links, Merkle, signature; sealed payloads "
         f"counted), {r['verify_without_master_key']['jobs']} processes",
         "verify_without_master_key", "events"),
        ("raw scan + SHA-256 of the stored bytes", "raw_scan", "rows"),
    ):
        f = r[key]
        lines.append(f"| {label} | {num(f[n])} | {f['seconds']:.2f} | {num(f['events_per_s'])} |")
    mem = r.get("memory")
    if mem:
        lines += ["", "| county | events | after start-up MB | export peak MB | "
                      "verify peak MB |", "|---:|---:|---:|---:|---:|"]
        for s in mem["sizes"]:
            lines.append(f"| {s['families']} families | {num(s['events'])} | "
                         f"{s['verify']['startup_mb']:.0f} | {s['export']['peak_mb']:.0f} | "
                         f"{s['verify']['peak_mb']:.0f} |")
        flat = mem.get("events_flat")
        if flat:
            q = flat["quarter"]
            lines.append(f"| {flat['families']} families, first quarter of the events | "
                         f"{num(q['events'])} | {q['startup_mb']:.0f} | | {q['peak_mb']:.0f} |")
    lines += ["", "| target | measured | required | verdict |", "|---|---:|---:|---|"]
    for t in r.get("targets") or targets(r):
        if t["unit"] == "x":
            meas, req = f"{t['measured']:.2f} x", f">= {t['required']} x"
        elif t["unit"] == "MB":
            meas, req = f"{t['measured']:.0f} MB", f"< {t['required']} MB"
        elif t["unit"] == "fraction":
            meas, req = f"+{t['measured']:.0%}", f"<= +{t['required']:.0%}"
        else:
            meas, req = num(t["measured"]), f">= {num(t['required'])}"
        lines.append(f"| {t['target']} | {meas} | {req} | {t['verdict']} |")
    runs = r["ingest"].get("runs")
    if runs and len(runs) > 1:
        lines += ["", "ingest runs, seconds: " + ", ".join(f"{x:.2f}" for x in runs)]
    floor = r["ratios"].get("ingest_vs_eventsourcing_save_only")
    if floor is not None:
        lines += ["", f"ingest / eventsourcing one save() per family of pre-built events "
                      f"(reference, no target): {floor:.2f} x"]
    if r.get("postgres"):
        lines += ["", format_postgres(r["postgres"])]
    return "\n".join(lines)


def profile(families: int, seed: int, workdir: Path, top: int = 30) -> str:
    """cProfile of ingest and of verify on a county: where the time goes (by own time)."""
    ingest_prof, verify_prof = cProfile.Profile(), cProfile.Profile()
    ledger = build_ledger(workdir / f"profile-{families}", families, seed, ingest_prof)
    verify_prof.enable()
    verify_ledger(ledger)
    verify_prof.disable()
    out = []
    for name, prof in (("ingest", ingest_prof), ("verify", verify_prof)):
        path = workdir / f"{name}.prof"
        prof.dump_stats(str(path))
        buf = io.StringIO()
        pstats.Stats(str(path), stream=buf).sort_stats("tottime").print_stats(top)
        out.append(f"== {name}: top {top} functions by own time ({path})\n{buf.getvalue()}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", type=int, default=3000,
                    help="county size (default 3000, the demo county)")
    ap.add_argument("--seed", type=int, default=DEMO_SEED, help="synth seed (default 2015)")
    ap.add_argument("--memory-families", type=int, nargs="+", metavar="N",
                    help="county sizes for the memory figures (default: a quarter and all)")
    ap.add_argument("--repeat", type=int, default=5,
                    help="runs of verify and the baselines, best kept (default 5)")
    ap.add_argument("--workdir", type=Path, help="keep ledgers here (default: a temp dir)")
    ap.add_argument("--pg", metavar="URL",
                    help="also measure ingest and verify on this PostgreSQL server (a role "
                         "that may create databases: the bench makes its own and drops them)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--profile", action="store_true",
                    help="instead: cProfile ingest and verify, print the top functions")
    args = ap.parse_args(argv)
    if args.families < 1 or args.repeat < 1:
        ap.error("--families and --repeat must be at least 1")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.profile:
        print(profile(args.families, args.seed, work))
        return 0
    sizes = tuple(args.memory_families) if args.memory_families else None
    result = run(args.families, args.seed, sizes, work, args.repeat, args.pg)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(format_table(result))
        print(f"\nledgers kept in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
