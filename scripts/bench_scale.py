"""Scale benchmark: the synthetic county at 1x and 10x, measured in one run.

For each county size (default 3,000 and 30,000 families) and backend (SQLite; PostgreSQL
with ``--pg URL``), on a fresh ledger:

- **ingest**: the eleven data-match files in one fresh interpreter, as one ``claimledger
  ingest`` command loads them: events per second and the process's peak RSS (VmHWM);
- **verify**: ``LedgerApp.verify`` in a fresh interpreter after a seal: events per second
  and peak RSS;
- **claims**: the same number of claims at both sizes (``--claims``, default 300: the
  families the generator expects claimable, in order, each submitted on its review date),
  then: bundle per claim (p50 over ``--bundles`` claims spread over the ledger), explain
  p95 (``--explain-runs`` over the same claims), ``claim list`` and the cohort report (its
  view caught up first; the report itself timed, best of three). At the larger size the
  claims then grow tenfold too and ``claim list`` is timed again: it should grow with the
  claims, not with the events.

Each figure is printed with its growth (10x / 1x) beside the target. Figures are
measurements on the machine at hand (it varies by a third minute to minute): the ratios
are taken within one run. Usage::

    .venv/bin/python scripts/bench.py --only scale [--pg URL] [--scale-families 3000]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_ledger

from claimledger.application import Settings, open_app
from claimledger.audit import claims
from claimledger.audit.bundle import build_bundle
from claimledger.audit.cohort import cohort_report
from claimledger.errors import ClaimRefusedError
from claimledger.synth import KINDS, generate

#: Targets (benchmark figures, not timed tests): growth for ten times the ledger.
FLAT_GROWTH_MAX = 1.5  # bundle p50, explain p95, claim list and cohort report at equal claims
RATE_GROWTH_MIN = 0.9  # ingest and verify events per second
RSS_MAX_MB = 300

_INGEST = """
import json, sys, time
from pathlib import Path
from claimledger.application import Settings, open_app
from claimledger.ingest.importer import finish, ingest, prepare
from bench_ledger import peak_kib_of_self

db, keys, folder, *kinds = sys.argv[1:]
app = open_app(Settings(db=db, key_dir=Path(keys), actor="data-officer"))
paths = [Path(folder) / f"{k}.csv" for k in kinds]
t0 = time.perf_counter()
prepare(app, paths)
events = sum(ingest(app, k, p)["appended"] for k, p in zip(kinds, paths))
finish(app)
print(json.dumps({"events": events, "seconds": time.perf_counter() - t0,
                  "peak_kib": peak_kib_of_self()}))
"""

_VERIFY = """
import json, sys, time
from pathlib import Path
from claimledger.application import Settings, open_app
from bench_ledger import peak_kib_of_self

db, keys = sys.argv[1:3]
app = open_app(Settings(db=db, key_dir=Path(keys), actor="admin"))
t0 = time.perf_counter()
v = app.verify()
print(json.dumps({"events": v.events, "ok": v.ok, "seconds": time.perf_counter() - t0,
                  "tiles": v.tiles, "peak_kib": peak_kib_of_self()}))
"""


def _child(code: str, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          check=False, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def _best_ms(fn: Callable[[], Any], runs: int = 3) -> float:
    return min(_timed(fn) for _ in range(runs))


def submit_claims(db: str, keys: Path, county: dict[str, Any], start: int, upto: int,
                  done: list[str]) -> None:
    """Submit claims for the generator's claimable families, in order, until ``upto``."""
    app = open_app(Settings(db=db, key_dir=keys, actor="internal-auditor"))
    expected = [f for f in county["family_scenarios"] if f["expect"].get("claimable")]
    for fam in expected[start:]:
        if len(done) >= upto:
            return
        try:
            done.append(claims.submit(app, fam["family_ref"],
                                      date.fromisoformat(fam["review_on"]))["claim_id"])
        except ClaimRefusedError:
            continue


def measure_claims(db: str, keys: Path, ids: list[str], bundles: int, explain_runs: int,
                   as_of: date) -> dict[str, Any]:
    app = open_app(Settings(db=db, key_dir=keys, actor="internal-auditor"))
    step = max(1, len(ids) // bundles)
    picked = ids[::step][:bundles]
    bundle_ms = [_timed(lambda c=c: build_bundle(app, c)) for c in picked]
    claims.explain(app, picked[0])  # warm: the registered policy is parsed once
    explain_ms = sorted(_timed(lambda k=k: claims.explain(app, picked[k % len(picked)]))
                        for k in range(explain_runs))
    cohort_report(app, as_of)  # the view caught up (incremental from here on)
    return {
        "claims": len(ids),
        "bundle_p50_ms": statistics.median(bundle_ms),
        "explain_p95_ms": explain_ms[int(0.95 * (len(explain_ms) - 1))],
        "claim_list_ms": _best_ms(lambda: claims.list_claims(app)),
        "cohort_report_ms": _best_ms(lambda: cohort_report(app, as_of)),
    }


def one_county(families: int, seed: int, work: Path, db: str | None, n_claims: int,
               bundles: int, explain_runs: int, grow_claims: bool) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    county = generate(work / "county", families, seed)
    generated_s = time.perf_counter() - t0
    db = db or f"sqlite:///{work / 'ledger.sqlite'}"
    keys = work / "keys"
    open_app(Settings(db=db, key_dir=keys, actor="admin"), must_exist=False).init(
        county["authority"])
    ing = _child(_INGEST, db, str(keys), str(work / "county"), *KINDS)
    open_app(Settings(db=db, key_dir=keys, actor="admin")).seal()
    ver = _child(_VERIFY, db, str(keys))
    if not ver["ok"]:
        raise RuntimeError("the benchmark's ledger does not verify")
    ids: list[str] = []
    submit_claims(db, keys, county, 0, n_claims, ids)
    end = max(date.fromisoformat(f["review_on"]) for f in county["family_scenarios"])
    r = {
        "families": families, "generated_s": round(generated_s, 1),
        "events": ing["events"], "ingest_events_per_s": ing["events"] / ing["seconds"],
        "ingest_peak_mb": ing["peak_kib"] / 1024,
        "verify_events_per_s": ver["events"] / ver["seconds"],
        "verify_peak_mb": ver["peak_kib"] / 1024,
        **measure_claims(db, keys, ids, bundles, explain_runs, end),
    }
    if grow_claims:
        submit_claims(db, keys, county, 0, 10 * n_claims, ids)
        app = open_app(Settings(db=db, key_dir=keys, actor="internal-auditor"))
        r["more_claims"] = len(ids)
        r["more_claim_list_ms"] = _best_ms(lambda: claims.list_claims(app))
    return r


GROWTH = [  # (figure, target description, check on growth 10x / 1x)
    ("ingest_events_per_s", f">= {RATE_GROWTH_MIN}x", lambda g: g >= RATE_GROWTH_MIN),
    ("verify_events_per_s", f">= {RATE_GROWTH_MIN}x", lambda g: g >= RATE_GROWTH_MIN),
    ("bundle_p50_ms", f"<= {FLAT_GROWTH_MAX}x", lambda g: g <= FLAT_GROWTH_MAX),
    ("explain_p95_ms", f"<= {FLAT_GROWTH_MAX}x", lambda g: g <= FLAT_GROWTH_MAX),
    ("claim_list_ms", f"<= {FLAT_GROWTH_MAX}x (same claims)", lambda g: g <= FLAT_GROWTH_MAX),
    # The cohort report counts families and their problems as well as claims: its view's
    # queries grow with the families counted (ten times here), never with a scan of events.
    ("cohort_report_ms", "<= 10x (the families it counts)", lambda g: g <= 10 * 1.25),
]


def run(families: int = 3000, seed: int = bench_ledger.DEMO_SEED, pg: str | None = None,
        n_claims: int = 300, bundles: int = 7, explain_runs: int = 200,
        factor: int = 10, file_rows: int = 1_000_000) -> dict[str, Any]:
    out: dict[str, Any] = {"machine": bench_ledger.machine(), "backends": {}}
    if file_rows:  # one large file's first ingest and re-ingest (bench_ingest_memory.py)
        import bench_ingest_memory

        out["large_file"] = bench_ingest_memory.run(file_rows, pg)
    for backend in ["sqlite", *(["postgres"] if pg else [])]:
        sizes = {}
        for k, n in enumerate((families, factor * families)):
            with tempfile.TemporaryDirectory(prefix="claimledger-scale-") as tmp:
                if backend == "postgres":
                    assert pg is not None
                    with bench_ledger.pg_database(pg) as db:
                        sizes[n] = one_county(n, seed, Path(tmp), db, n_claims, bundles,
                                              explain_runs, grow_claims=k == 1)
                else:
                    sizes[n] = one_county(n, seed, Path(tmp), None, n_claims, bundles,
                                          explain_runs, grow_claims=k == 1)
        small, large = sizes[families], sizes[factor * families]
        rows = []
        for name, target, ok in GROWTH:
            g = large[name] / small[name]
            rows.append({"figure": name, "small": small[name], "large": large[name],
                         "growth": g, "target": target, "met": bool(ok(g))})
        rss = max(small["ingest_peak_mb"], large["ingest_peak_mb"], small["verify_peak_mb"],
                  large["verify_peak_mb"])
        rows.append({"figure": "peak_rss_mb", "small": max(small["ingest_peak_mb"],
                                                           small["verify_peak_mb"]),
                     "large": rss, "growth": None, "target": f"< {RSS_MAX_MB} MB",
                     "met": rss < RSS_MAX_MB})
        claims_growth = large["more_claims"] / large["claims"]
        list_growth = large["more_claim_list_ms"] / large["claim_list_ms"]
        rows.append({"figure": "claim_list_ms_by_claims", "small": large["claim_list_ms"],
                     "large": large["more_claim_list_ms"], "growth": list_growth,
                     "target": f"<= {claims_growth:.1f}x (the claims' growth)",
                     "met": list_growth <= 1.25 * claims_growth})
        out["backends"][backend] = {"sizes": sizes, "growth": rows}
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.0f}" if v >= 100 else f"{v:.2f}"
    return str(v)


def format_table(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [f"machine: {m['nproc']} CPUs, {m['cpu']}, Python {m['python']}, SQLite "
             f"{m['sqlite']}, load {m['load_average']}"]
    big = r.get("large_file") or {}
    for backend, b in r["backends"].items():
        sizes = list(b["sizes"].values())
        f = big.get(backend if backend == "sqlite" else "postgresql")
        lines.append(f"-- {backend}: {sizes[0]['families']:,} families ({sizes[0]['events']:,} "
                     f"events) and {sizes[1]['families']:,} ({sizes[1]['events']:,} events); "
                     f"{sizes[0]['claims']} claims each, then {sizes[1].get('more_claims')}")
        lines.append(f"{'figure':28} {'1x':>12} {'10x':>12} {'growth':>8}  target")
        for row in b["growth"]:
            g = "" if row["growth"] is None else f"{row['growth']:.2f}x"
            verdict = "MET" if row["met"] else "NOT MET"
            lines.append(f"{row['figure']:28} {_fmt(row['small']):>12} "
                         f"{_fmt(row['large']):>12} {g:>8}  {row['target']} -> {verdict}")
        if f and "error" not in f:
            for run_ in ("first", "again"):
                mb = f[run_]["peak_rss_mb"]
                verdict = "MET" if mb < RSS_MAX_MB else "NOT MET"
                lines.append(f"{'file ' + format(f['rows'], ',') + ' rows, ' + run_:28} "
                             f"{'':>12} {mb:>12,.0f} {'':>8}  < {RSS_MAX_MB} MB -> {verdict}")
        elif f:
            lines.append(f"file {f['rows']:,} rows: {f['error']}")
    return "\n".join(lines)
