"""claimledger benchmarks: figures and ratios against eventsourcing's own baselines.

Run ``.venv/bin/python scripts/bench.py`` for every section or ``--only evaluate`` for one.
Each section is a function in :data:`SECTIONS` taking the parsed arguments and returning its
figures as plain data; the figures are printed as they are measured (``--json`` prints one
document at the end instead). Everything runs in a temporary directory on the embedded SQLite
default. Timings are wall-clock on this machine, for comparison between runs, not promises.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from claimledger.application import LedgerApp, Settings, open_app
from claimledger.audit import claims, cohort
from claimledger.domain.family import Family
from claimledger.errors import ClaimRefusedError
from claimledger.evaluate import service
from claimledger.ingest.importer import ingest
from claimledger.ingest.schemas import KINDS
from claimledger.ledger.envelope import stream_uuid
from claimledger.synth import generate

NOW = "2099-01-01T00:00:00Z"
Out = Callable[[str], None]


def _ledger(workdir: Path, authority: str) -> tuple[Settings, LedgerApp]:
    settings = Settings(db=f"sqlite:///{workdir / 'ledger.sqlite'}", key_dir=workdir / "keys",
                        now=NOW, actor="bench")
    app = open_app(settings, must_exist=False)
    app.init(authority)
    return settings, open_app(settings)


def _pct(samples: list[float], p: int) -> float:
    """The p-th percentile (nearest rank) of the samples, in milliseconds."""
    ordered = sorted(samples)
    rank = max(1, -(-p * len(ordered) // 100))
    return ordered[rank - 1] * 1000


def _timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# --- evaluate, explain, cohort ----------------------------------------------------------------
def bench_evaluate(args: argparse.Namespace, out: Out) -> dict[str, Any]:
    """Evaluate and explain on a synthetic cohort, against eventsourcing's repository replay."""
    with tempfile.TemporaryDirectory(prefix="claimledger-bench-") as tmp:
        work = Path(tmp)
        county = generate(work / "county", args.families, args.seed)
        settings, app = _ledger(work, county["authority"])
        t = time.perf_counter()
        events = sum(ingest(app, k, work / "county" / f"{k}.csv")["appended"] for k in KINDS)
        out(f"cohort: {args.families} families, {events} events ingested in "
            f"{time.perf_counter() - t:.1f} s")
        fams = [(f["family_ref"], date.fromisoformat(f["review_on"]))
                for f in county["family_scenarios"]]

        service.evaluate(app, *fams[0])  # policies loaded once per process: not the figure
        decisions: dict[str, dict[str, Any]] = {}

        def evaluate_all() -> None:
            for ref, on in fams:
                decisions[ref] = service.evaluate(app, ref, on)

        def replay_all() -> None:
            for ref, _ in fams:
                app.repository.get(stream_uuid(Family.stream_name(ref)))

        # Interleaved rounds, best of each: the two share the machine's noise alike.
        rounds = [(_timed(evaluate_all), _timed(replay_all)) for _ in range(args.rounds)]
        ev_s, rp_s = min(r[0] for r in rounds), min(r[1] for r in rounds)
        n = len(fams)
        out(f"evaluate: {n / ev_s:,.0f} families/s ({ev_s / n * 1000:.2f} ms each)")
        out(f"baseline eventsourcing repository.get(Family): {n / rp_s:,.0f} families/s "
            f"({rp_s / n * 1000:.2f} ms each)")
        out(f"ratio evaluate / repository replay: {ev_s / rp_s:.1f}x")

        submitted = []
        for ref, on in fams:
            if decisions[ref]["claimable"]:
                with contextlib.suppress(ClaimRefusedError):  # e.g. policy not in force
                    submitted.append(claims.submit(open_app(settings), ref, on)["claim_id"])
            if args.claims and len(submitted) >= args.claims:
                break
        app = open_app(settings)
        claims.explain(app, submitted[0])
        samples = [_timed(lambda c=c: claims.explain(app, c)) for c in submitted]
        family_of = {c: c.rsplit("/", 1)[0] for c in submitted}
        base = [_timed(lambda c=c: app.repository.get(
            stream_uuid(Family.stream_name(family_of[c])))) for c in submitted]
        out(f"explain over {len(samples)} submitted claims: p50 {_pct(samples, 50):.2f} ms, "
            f"p95 {_pct(samples, 95):.2f} ms (repository.get of the family: p50 "
            f"{_pct(base, 50):.2f} ms; ratio {_pct(samples, 50) / _pct(base, 50):.1f}x)")

        view = cohort.open_view(app.location)
        replayed: list[int] = []
        rebuild_s = _timed(lambda: replayed.append(cohort.rebuild(app, view)))
        q = [_timed(lambda: cohort.report(view, date(2018, 3, 31))) for _ in range(20)]
        out(f"cohort view: rebuilt in {rebuild_s * 1000:.0f} ms ({replayed[0]} relevant events "
            f"of {app.recorder.max_notification_id()}); report query p50 {_pct(q, 50):.2f} ms")

        target = bench_explain_target(work, settings, args.explain_runs, out)
        return {
            "families": n, "events": events,
            "evaluate_families_per_s": round(n / ev_s),
            "replay_families_per_s": round(n / rp_s),
            "evaluate_over_replay": round(ev_s / rp_s, 2),
            "explain_claims": len(samples),
            "explain_p50_ms": round(_pct(samples, 50), 3),
            "explain_p95_ms": round(_pct(samples, 95), 3),
            "replay_p50_ms": round(_pct(base, 50), 3),
            "cohort_rebuild_ms": round(rebuild_s * 1000),
            "cohort_rebuild_events": replayed[0],
            "cohort_report_p50_ms": round(_pct(q, 50), 3),
            **target,
        }


def hundred_event_family(ref: str, target: int = 100) -> dict[str, list[list[str]]]:
    """A Worcestershire family claimable on 31 March 2016 whose stream holds ``target`` events.

    Two adults and three children; the children persistently absent and ASB at
    identification; two school years of attendance, seven ASB incidents, the lead worker's
    attestation and judgement, and monthly wellbeing (WEMWBS) scores for both adults to make
    up the count: an instrument this plan does not measure, so the verdict does not move.
    """
    policy = "worcestershire/stronger-families-2015-16"
    kids = [(f"{ref}-C{i}", born) for i, born in enumerate(("2004-03-01", "2006-05-01",
                                                              "2008-09-01"), start=1)]
    adults = [f"{ref}-A1", f"{ref}-A2"]
    rows: dict[str, list[list[str]]] = {
        "families": [[ref, "Worcestershire", policy, "2015-05-01"]],
        "members": [[ref, a, "adult", "1980-02-02"] for a in adults]
        + [[ref, c, "child", born] for c, born in kids],
        "indicators": [[ref, kids[0][0], "education", "absence", "2015-05-01",
                        "identification", "school census"],
                       [ref, adults[0], "crime_asb", "asb", "2015-05-01", "identification",
                        "police"]],
        "attachments": [[ref, "2015-06-01", "LW-7", "2015-06-10", "2015-06-20"]],
        "attendance": [[c, s, e, "100", "5", "0", "0", "no", "school", "census"]
                       for c, _ in kids for y in (2014, 2015)
                       for s, e in ((f"{y}-09-01", f"{y}-12-18"), (f"{y + 1}-01-04",
                                    f"{y + 1}-03-24"), (f"{y + 1}-04-11", f"{y + 1}-07-20"))
                       if e <= "2016-03-31"],
        "incidents": [[adults[0], d, "asb_incident", "no", "police"] for d in (
            "2015-01-10", "2015-02-11", "2015-03-12", "2015-04-13", "2015-05-14",
            "2015-05-20", "2016-01-15")],
        "attestations": [[ref, "", "asb_sanctions_not_escalated", "2016-03-10", "LW-7",
                          "housing provider letter HP-22"]],
        "judgements": [[ref, "2016-03-15", "LW-7", "all", "yes", "yes", "yes",
                        "support stepped down"]],
    }
    have = sum(len(v) for v in rows.values())
    scores = []
    for k in range(target - have):
        month = 2016 * 12 + 1 - k // 2  # back from February 2016, one score per adult a month
        scores.append([adults[k % 2], "wemwbs", f"{month // 12}-{month % 12 + 1:02d}-01",
                       str(40 + k % 7), "LW-7"])
    rows["scores"] = scores
    return rows


def bench_explain_target(work: Path, settings: Settings, runs: int, out: Out) -> dict[str, Any]:
    """The target: explain p95 under 10 ms for a claim on a family of about 100 events."""
    from claimledger.synth import HEADERS

    data = hundred_event_family("BIG-1")
    folder = work / "big"
    folder.mkdir()
    app = open_app(settings)
    for kind in KINDS:
        if data.get(kind):
            path = folder / f"{kind}.csv"
            with path.open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(HEADERS[kind])
                w.writerows(data[kind])
            ingest(app, kind, path)
    n_events = len(app.stream_records(Family.stream_name("BIG-1")))
    cid = claims.submit(open_app(settings), "BIG-1", date(2016, 3, 31))["claim_id"]
    app = open_app(settings)
    claims.explain(app, cid)
    samples = [_timed(lambda: claims.explain(app, cid)) for _ in range(runs)]
    base = [_timed(lambda: app.repository.get(stream_uuid(Family.stream_name("BIG-1"))))
            for _ in range(runs)]
    p50, p95 = _pct(samples, 50), _pct(samples, 95)
    verdict = "MET" if p95 < 10 else "NOT MET"
    out(f"target explain p95 < 10 ms on a {n_events}-event family ({runs} runs): "
        f"p50 {p50:.2f} ms, p95 {p95:.2f} ms -> {verdict} (repository.get p50 "
        f"{_pct(base, 50):.2f} ms; ratio {p50 / _pct(base, 50):.1f}x)")
    return {"target_family_events": n_events, "target_explain_p50_ms": round(p50, 3),
            "target_explain_p95_ms": round(p95, 3), "target_met": p95 < 10,
            "target_replay_p50_ms": round(_pct(base, 50), 3)}


def bench_ledger(args: argparse.Namespace, out: Out) -> dict[str, Any]:
    """Ingest vs raw SQLite and eventsourcing, verify vs a raw scan, peak RSS;
    with ``--pg URL`` ingest and verify on PostgreSQL too.

    The county is the demo's (``--ledger-families``, default 3,000); see bench_ledger.py.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_ledger

    r = bench_ledger.run(args.ledger_families, args.seed, repeat=args.rounds, pg=args.pg)
    out(bench_ledger.format_table(r))
    return r


def bench_scale(args: argparse.Namespace, out: Out) -> dict[str, Any]:
    """The county at 1x and 10x (``--scale-families`` and ten times it), on SQLite and with
    ``--pg URL`` on PostgreSQL: growth of each figure beside its target (bench_scale.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_scale

    r = bench_scale.run(args.scale_families, args.seed, pg=args.pg, n_claims=args.scale_claims,
                        file_rows=args.ingest_rows)
    out(bench_scale.format_table(r))
    return r


def bench_ingest_memory(args: argparse.Namespace, out: Out) -> dict[str, Any]:
    """Peak RSS of one large attendance file's ingest and re-ingest (``--ingest-rows``,
    default 1,000,000), on SQLite and with ``--pg URL`` on PostgreSQL; see
    bench_ingest_memory.py."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_ingest_memory

    r = bench_ingest_memory.run(args.ingest_rows, args.pg)
    out(bench_ingest_memory.format_table(r))
    return r


SECTIONS: dict[str, Callable[[argparse.Namespace, Out], dict[str, Any]]] = {
    "evaluate": bench_evaluate,
    "ledger": bench_ledger,
    "scale": bench_scale,
    "ingest-memory": bench_ingest_memory,
}
#: Without --only: the scale and ingest-memory sections (a 30,000-family county and a
#: 1,000,000-row file, each twice with --pg) are asked for by name.
DEFAULT_SECTIONS = ["evaluate", "ledger"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append",
                        help="run only this section (repeatable)")
    parser.add_argument("--families", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2015)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (best is kept)")
    parser.add_argument("--claims", type=int, default=0,
                        help="stop submitting after this many claims (0: every claimable)")
    parser.add_argument("--explain-runs", type=int, default=300)
    parser.add_argument("--ledger-families", type=int, default=3000,
                        help="county size for the ledger section (the demo's 3,000)")
    parser.add_argument("--ingest-rows", type=int, default=1_000_000,
                        help="rows of the ingest-memory section's attendance file")
    parser.add_argument("--pg", metavar="URL",
                        help="ledger, ingest-memory and scale sections: also on this PostgreSQL "
                             "server (a role that may create databases; the bench makes its "
                             "own and drops them)")
    parser.add_argument("--scale-families", type=int, default=3000,
                        help="scale section: the 1x county (10x is ten times it)")
    parser.add_argument("--scale-claims", type=int, default=300,
                        help="scale section: claims submitted at both sizes")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    out: Out = (lambda _line: None) if args.json else print
    results = {}
    for name in args.only or DEFAULT_SECTIONS:
        out(f"== {name}")
        results[name] = SECTIONS[name](args, out)
    if args.json:
        json.dump(results, sys.stdout, indent=2, sort_keys=True)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
