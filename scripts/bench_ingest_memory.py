"""Peak memory of ingesting one large data-match file, and of ingesting it again.

A synthetic ledger of ``rows // 60`` families (three children each) is registered, then an
attendance file of ``rows`` rows (twenty terms per child, a family's rows together, as data
matches and the synthetic county write them) is ingested by a ``claimledger ingest`` command
in a child process, twice: the first time it appends every row, the second time (the same
file) nothing. Each command's peak RSS is ``ru_maxrss`` of that child and its own children
(the ingest writer process), from ``os.wait4`` in a small starter process that forks it.
On SQLite, and on PostgreSQL given a server URL whose role may create databases. Usage::

    .venv/bin/python scripts/bench_ingest_memory.py [--rows 1000000] [--pg URL] [--json]

``run(rows, pg)`` is what ``scripts/bench.py`` calls.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

TARGET_MB = 300
CHILDREN = 3
TERMS = 20
ROWS_PER_FAMILY = CHILDREN * TERMS
_MAIN = "import sys; from claimledger.cli import main; sys.exit(main())"
AUTHORITY = "E08000025"
POLICY = "tf-2015-phase2"


def write_files(work: Path, rows: int, families: int | None = None) -> dict[str, Path]:
    """The families, members and attendance files of a ledger whose attendance file has
    ``rows`` rows: ``families`` (by default one per 60 rows) of three children, each with as
    many terms as it takes (the last family has fewer)."""
    families = families or -(-rows // ROWS_PER_FAMILY)
    width = len(str(families))
    n_terms = -(-rows // (families * CHILDREN))
    terms = [(date(2010, 9, 1) + timedelta(days=122 * t)) for t in range(n_terms)]
    paths = {k: work / f"{k}.csv" for k in ("families", "members", "attendance")}
    with paths["families"].open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("family_ref", "authority", "policy_id", "identified_on"))
        w.writerows((f"F{i:0{width}d}", AUTHORITY, POLICY, "2015-04-01")
                    for i in range(families))
    with paths["members"].open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("family_ref", "member_ref", "role", "birth_date"))
        w.writerows((f"F{i:0{width}d}", f"M{i:0{width}d}-{c}", "child", "2005-06-01")
                    for i in range(families) for c in range(CHILDREN))
    with paths["attendance"].open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("member_ref", "term_start", "term_end", "sessions_possible",
                    "sessions_absent", "unauthorised_absent", "fixed_term_exclusions",
                    "permanent_exclusion", "setting", "source"))
        n = 0
        for i in range(families):
            for c in range(CHILDREN):
                for t, start in enumerate(terms):
                    if n == rows:
                        break
                    n += 1
                    w.writerow((f"M{i:0{width}d}-{c}", start.isoformat(),
                                (start + timedelta(days=90)).isoformat(), 120,
                                5 + (i + c + t) % 35, (i + t) % 5, 0, "no", "school", "census"))
    return paths


def _env(db: str, keys: Path, actor: str) -> dict[str, str]:
    return {**os.environ, "CLAIMLEDGER_DB": db, "CLAIMLEDGER_KEY_DIR": str(keys),
            "CLAIMLEDGER_ACTOR": actor}


#: Starts the command from a small process and reports the command's own peak: a child
#: started straight from a large process (a test run, say) inherits that process's peak in
#: ``ru_maxrss`` across its exec; one forked from this small starter does not.
_STARTER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _claimledger(env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run ``claimledger ARGS`` in a child; its seconds and peak RSS (with its children's)."""
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f, \
            tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _STARTER, str(peak_file), "-c", _MAIN,
                               *args], env=env, stdout=out_f, stderr=err_f, check=False)
        seconds = time.perf_counter() - t
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read(), err_f.read()
        peak_kib = int(peak_file.read_text()) if peak_file.exists() else 0
    if proc.returncode:
        raise RuntimeError(f"claimledger {' '.join(args)} failed ({proc.returncode}): "
                           f"{err.decode()[-2000:]}")
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(peak_kib / 1024, 1),
            "result": json.loads(out) if out.strip().startswith(b"{") else out.decode()}


def measure(work: Path, db: str, rows: int, families: int | None = None) -> dict[str, Any]:
    """Register the ledger's families and members, then ingest the attendance file twice."""
    keys = work / "keys"
    paths = write_files(work, rows, families)
    _claimledger(_env(db, keys, "admin"), "init", "--authority", AUTHORITY)
    officer = _env(db, keys, "data-officer")
    _claimledger(officer, "ingest", "families", str(paths["families"]),
                 "members", str(paths["members"]))
    out: dict[str, Any] = {"rows": rows, "file_mb": round(paths["attendance"].stat().st_size
                                                          / 2**20, 1)}
    for run in ("first", "again"):
        try:
            r = _claimledger(officer, "ingest", "--json", "attendance",
                             str(paths["attendance"]))
        except RuntimeError as e:  # reported in the table: the figures of the other runs
            out["error"] = f"{run} ingest: {str(e)[-300:]}"
            return out
        res = r["result"]
        out[run] = {"seconds": r["seconds"], "peak_rss_mb": r["peak_rss_mb"],
                    "appended": res["appended"], "skipped": res["skipped_duplicates"],
                    "events_per_s": round(rows / r["seconds"])}
    return out


@contextlib.contextmanager
def _pg_database(server: str) -> Iterator[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_ledger

    with bench_ledger.pg_database(server) as db:
        yield db


def run(rows: int, pg: str | None) -> dict[str, Any]:
    """Peak RSS of a ``rows``-row attendance file's first ingest and re-ingest, on SQLite
    and (given ``pg``, a server URL whose role may create databases) on PostgreSQL."""
    out: dict[str, Any] = {"target_mb": TARGET_MB}
    with tempfile.TemporaryDirectory(prefix="claimledger-ingest-memory-") as tmp:
        work = Path(tmp) / "sqlite"
        work.mkdir()
        out["sqlite"] = measure(work, f"sqlite:///{work / 'ledger.sqlite'}", rows)
        if pg:
            work = Path(tmp) / "pg"
            work.mkdir()
            with _pg_database(pg) as db:
                out["postgresql"] = measure(work, db, rows)
    out["met"] = all("error" not in r and r[run]["peak_rss_mb"] < TARGET_MB
                     for k, r in out.items() if k in ("sqlite", "postgresql")
                     for run in ("first", "again"))
    return out


def format_table(r: dict[str, Any]) -> str:
    lines = [f"peak RSS of one attendance file's ingest (target < {r['target_mb']} MB)",
             "| backend | rows | run | appended | skipped | seconds | rows/s | peak RSS "
             "| verdict |",
             "|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for backend in ("sqlite", "postgresql"):
        b = r.get(backend)
        if b is None:
            continue
        if "error" in b:
            lines.append(f"| {backend} | {b['rows']:,} | failed: {b['error']} |")
            continue
        for run in ("first", "again"):
            x = b[run]
            verdict = "PASS" if x["peak_rss_mb"] < r["target_mb"] else "MISS"
            lines.append(f"| {backend} | {b['rows']:,} | {run} | {x['appended']:,} | "
                         f"{x['skipped']:,} | {x['seconds']} | {x['events_per_s']:,} | "
                         f"{x['peak_rss_mb']} MB | {verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pg", metavar="URL")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    r = run(args.rows, args.pg)
    print(json.dumps(r, indent=2) if args.json else format_table(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
