"""The end-to-end demo: a synthetic county through every part of the ledger.

In the working directory, on the embedded SQLite default: synthesise a county, initialise
the ledger, ingest the eleven data-match files, evaluate every family on its review date, claim
year by year with ``claim run`` (each run with its internal-audit sample, the last one's
return written as XLSX), validate the claims as an auditor, spot-check a sample (one claim
bundled and verified offline, one failed and reversed, repaid by the next return), verify the
ledger, and report what happened.
"""

from __future__ import annotations

import contextlib
import shlex
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from .application import Settings, open_app
from .audit import claim_return, claim_run, claims, spotcheck
from .audit.bundle import check_bundle, write_bundle
from .evaluate.service import evaluate
from .ingest.importer import finish, ingest, prepare
from .synth import DEFAULT_POLICY, KINDS, generate


def run_demo(
    workdir: Path, *, families: int, seed: int, policy_id: str = DEFAULT_POLICY,
    progress: Callable[[str, int], Any] | None = None, log: Callable[[str], None] = print,
    program: str = "claimledger",
) -> dict[str, Any]:
    """Run the whole story in ``workdir``; return the figures as plain data. ``program``:
    how the user ran claimledger, for the command the summary suggests next (it names the
    demo's ledger and keys by absolute path, so it works from wherever the user stands)."""
    t0 = time.perf_counter()
    workdir = workdir.resolve()
    command = " ".join(shlex.quote(a) for a in (
        program, "--db", f"sqlite:///{workdir / 'claimledger.sqlite'}", "--key-dir",
        str(workdir / ".claimledger")))
    db = f"sqlite:///{workdir / 'claimledger.sqlite'}"
    keys = workdir / ".claimledger"
    admin = Settings(db=db, key_dir=keys, actor="admin")

    log(f"1/7 synthesising {families} families under {policy_id} (seed {seed})")
    county = generate(workdir / "county", families, seed, policy_id)

    log("2/7 initialising the ledger and the authority's signing key")
    app = open_app(admin, must_exist=False)
    init = app.init(county["authority"])

    log("3/7 ingesting the eleven data-match files")
    data = Settings(db=db, key_dir=keys, actor="data-officer")
    ingested: dict[str, int] = {}
    t_ingest = time.perf_counter()
    app = open_app(data)  # as one `claimledger ingest KIND FILE ...` command loads them
    prepare(app, [workdir / "county" / f"{kind}.csv" for kind in KINDS])
    for kind in KINDS:
        path = workdir / "county" / f"{kind}.csv"
        rows = county["files"][f"{kind}.csv"]
        if progress and rows:
            with progress(f"  {kind}", rows) as bar:
                r = ingest(app, kind, path, progress=bar.update)
        else:
            r = ingest(app, kind, path)
        ingested[kind] = r["appended"]
    finish(app)
    ingest_s = time.perf_counter() - t_ingest
    events = sum(ingested.values())

    log("4/7 evaluating every family on its review date, then claiming year by year "
        "with `claim run`")
    auditor = Settings(db=db, key_dir=keys, actor="internal-auditor")
    verdicts: Counter[str] = Counter()
    fams = county["family_scenarios"]
    app = open_app(auditor)  # one command's worth of work: one application, one clock reading
    with _bar(progress, "  families", len(fams)) as bar:
        for fam in fams:
            d = evaluate(app, fam["family_ref"], date.fromisoformat(fam["review_on"]))
            verdicts[_route_label(d["route"])] += 1
            bar(1)
    submitted: list[str] = []
    runs: list[dict[str, Any]] = []
    windows = financial_years(min(f["review_on"] for f in fams), max(f["review_on"] for f in fams))
    with _bar(progress, "  claim windows", len(windows)) as bar:
        for lo, hi in windows:
            r = claim_run.run(open_app(auditor), lo, hi, submit=True, audit_rate="10%",
                              audit_seed=seed)
            if r["run_id"]:
                submitted += r["submitted"]
                runs.append({"run_id": r["run_id"], "window": f"{lo}..{hi}",
                             "claims": len(r["submitted"]), "total": r["totals"]["total"],
                             "audit": len(r["audit"]["chosen"])})
            bar(1)
    returned = None
    if runs:
        app = open_app(auditor)
        last = claim_run.find_run(app, runs[-1]["run_id"])
        returned = claim_return.write(claim_return.build(app, last),
                                      workdir / f"return-{last['run_id']}.xlsx")

    log("5/7 validating the submitted claims as the internal auditor")
    app = open_app(auditor)
    for cid in submitted:
        claims.validate(app, cid, "demo: evidence reviewed")

    log("6/7 drawing a 10% spot-check sample, bundling one claim for offline checking, and "
        "reversing one that fails")
    sample = spotcheck.draw(open_app(auditor), "10%", seed) if submitted else None
    bundle_check: dict[str, Any] | None = None
    if sample and sample["chosen"]:
        picked = sample["chosen"][0]
        out = workdir / f"bundle-{picked.replace('/', '-')}.zip"
        made = write_bundle(open_app(auditor), picked, out)
        trusted = (keys / "signing.pub").read_text()
        checked = check_bundle(out.read_bytes(), trusted_key=bytes.fromhex(trusted.strip()))
        bundle_check = {"claim_id": picked, "file": made["file"], "bytes": made["bytes"],
                        "ok": checked.ok, "reasons": list(checked.reasons)}
        spotcheck.record(open_app(auditor), picked, "upheld",
                         "demo: bundle verified offline and decision re-derived")
    reversal = None
    if sample and len(sample["chosen"]) > 1:
        failed = sample["chosen"][1]
        spotcheck.record(open_app(auditor), failed, "failed",
                         "demo: the case file holds no signed family plan",
                         reverse="evidence_missing")
        app = open_app(auditor)
        draft = claim_run.run(app, *windows[-1])  # dry: the next return, which repays it
        reversal = {"claim_id": failed, **claim_return.write(
            claim_return.build(app, None, draft), workdir / "return-next-draft.xlsx")}

    log("7/7 sealing the last checkpoint and verifying the whole ledger")
    open_app(admin).seal()  # the validations and the spot check are covered too
    t_verify = time.perf_counter()
    result = open_app(admin).verify()
    verify_s = time.perf_counter() - t_verify
    expected = Counter(_route_label(f["expect"].get("route")) for f in fams)
    return {
        "workdir": str(workdir),
        "db": db,
        "ledger_id": init["ledger_id"],
        "authority": county["authority"],
        "policy_id": county["policy_id"],
        "families": families,
        "scenarios": county["scenarios"],
        "ingested_events": events,
        "ingest_seconds": round(ingest_s, 2),
        "ingest_events_per_second": int(events / ingest_s) if ingest_s else None,
        "verdicts": dict(verdicts),
        "expected_verdicts": dict(expected),
        "claims_submitted": len(submitted),
        "claims_validated": len(submitted),
        "claim_runs": runs,
        "return": returned,
        "reversal": reversal,
        "verify": result.to_dict(),
        "verify_seconds": round(verify_s, 2),
        "seconds": round(time.perf_counter() - t0, 1),
        "example_claim": submitted[0] if submitted else None,
        "command": command,
        "spot_check": None if sample is None else {
            "sample_id": sample["sample_id"], "population": sample["population"],
            "chosen": sample["chosen"]},
        "bundle": bundle_check,
    }


def summary_text(r: dict[str, Any]) -> str:
    v = r["verify"]
    lines = [
        "",
        f"claimledger demo: {r['families']} synthetic families under {r['policy_id']}",
        f"  ledger        {r['db']}",
        f"  ingested      {r['ingested_events']} events in {r['ingest_seconds']} s "
        f"({r['ingest_events_per_second']} events/s)",
        "  verdicts      " + ", ".join(f"{k}: {n}" for k, n in sorted(r["verdicts"].items())),
        "  expected      " + ", ".join(f"{k}: {n}"
                                       for k, n in sorted(r["expected_verdicts"].items())),
        f"  claims        {r['claims_submitted']} submitted in {len(r['claim_runs'])} yearly "
        "claim runs (each sealed by one signed checkpoint) and validated",
        f"  verify        {'intact' if v['ok'] else 'FAILED'}: {v['events']} events, "
        f"{v['streams']} streams, {v['checkpoints']} checkpoints ({r['verify_seconds']} s)",
    ]
    if r["spot_check"]:
        sc = r["spot_check"]
        lines.append(f"  spot check    {sc['sample_id']}: {len(sc['chosen'])} of "
                     f"{sc['population']} claims sampled")
    if r["bundle"]:
        b = r["bundle"]
        lines.append(f"  bundle        {b['file']} ({b['bytes']} bytes) verified offline: "
                     f"{'ok' if b['ok'] else 'FAILED ' + '; '.join(b['reasons'])}")
    if r["return"]:
        ret = r["return"]
        paid = (f"{ret['total_claimed']} claimed" if ret["total_claimed"] != "0"
                else "the plan publishes no payment amounts")
        lines.append(f"  return        {ret['file']}: {ret['claims']} claims, {paid}")
    if r["reversal"]:
        rv = r["reversal"]
        lines.append(f"  reversed      {rv['claim_id']} after a failed spot check; the next "
                     f"return ({rv['file']}) lists it to repay")
    if r["example_claim"]:
        lines.append(f"  try           {r['command']} claim explain {r['example_claim']}")
    lines.append(f"  took          {r['seconds']} s")
    return "\n".join(lines)


def financial_years(first: str, last: str) -> list[tuple[date, date]]:
    """April-to-March years from the one holding ``first`` to the one holding ``last``: the
    demo's claim windows (a council may run any window, a month or a quarter as often)."""
    lo, end = date.fromisoformat(first), date.fromisoformat(last)
    year = lo.year if lo.month >= 4 else lo.year - 1
    out = []
    while date(year, 4, 1) <= end:
        out.append((date(year, 4, 1), date(year + 1, 3, 31)))
        year += 1
    return out


@contextlib.contextmanager
def _bar(progress: Callable[[str, int], Any] | None, label: str, n: int
         ) -> Iterator[Callable[[int], Any]]:
    """``progress``'s bar for ``n`` steps, or a no-op."""
    if progress is None:
        yield lambda _n: None
        return
    with progress(label, n) as bar:
        yield bar.update


def _route_label(route: str | None) -> str:
    return "not claimable" if route in (None, "none") else route
