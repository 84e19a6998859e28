"""Several writers at once: the ledger they leave verifies, and every command told the truth.

Story: on a claim day the data officer loads the week's data matches (a large attendance
file and an incidents file) while two internal auditors submit claims for different
families, both of them by mistake also submit the same family, and an admin seals a
checkpoint in the middle of the large file. Each of these is a real `claimledger` process,
started at the same moment, for several rounds, on a SQLite file and on PostgreSQL.

Then: `verify` passes; every command exited 0 or gave one clear, retryable refusal (exit 2);
every claim a command reported is in the ledger with a checkpoint that covers it, and no
other claim is; every checkpoint a command reported is in the ledger; the events each
ingest reported are exactly the family events the ledger gained.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from claimledger.application import Settings, open_app
from claimledger.evaluate.service import evaluate
from claimledger.ingest.importer import finish, ingest, prepare
from claimledger.ledger.canonical import loads
from claimledger.synth import KINDS, generate

ROUNDS = 3
CLI = [sys.executable, "-c", "from claimledger.cli import main; main()"]
#: What a command may answer instead of doing its work: a clear refusal, nothing written.
REFUSALS = ("already has a", "another writer appended", "another writer holds the ledger")


def _county(db: str, keys: Path, work: Path) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A 60-family county loaded and the families claimable on their review dates."""
    county = generate(work / "county", 60, 2015)
    open_app(Settings(db=db, key_dir=keys, actor="admin"), must_exist=False).init(
        county["authority"])
    app = open_app(Settings(db=db, key_dir=keys, actor="data-officer"))
    prepare(app, [work / "county" / f"{k}.csv" for k in KINDS])
    for kind in KINDS:
        ingest(app, kind, work / "county" / f"{kind}.csv")
    finish(app)
    app = open_app(Settings(db=db, key_dir=keys, actor="admin"))
    app.seal()
    claimable = []
    for fam in county["family_scenarios"]:
        on = date.fromisoformat(fam["review_on"])
        if evaluate(app, fam["family_ref"], on)["claimable"]:
            claimable.append((fam["family_ref"], fam["review_on"]))
    return county, claimable


def _children(work: Path) -> list[str]:
    with (work / "county" / "members.csv").open(newline="") as f:
        return [r["member_ref"] for r in csv.DictReader(f) if r["role"] == "child"]


def _attendance(path: Path, children: list[str], year: int) -> int:
    """Weekly attendance for every child through a school year long after every claim date:
    enough rows that ingest uses its writer process and holds the lock for a while."""
    start = date(year, 9, 1)
    rows = 0
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["member_ref", "term_start", "term_end", "sessions_possible",
                    "sessions_absent", "unauthorised_absent", "fixed_term_exclusions",
                    "permanent_exclusion", "setting", "source"])
        for child in children:
            for week in range(52):
                first = start + timedelta(weeks=week)
                w.writerow([child, first.isoformat(), (first + timedelta(days=4)).isoformat(),
                            10, week % 3, 0, 0, "no", "school", "school_census"])
                rows += 1
    return rows


def _incidents(path: Path, children: list[str], year: int) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["member_ref", "occurred_on", "kind", "serious", "source"])
        for i, child in enumerate(children[:40]):
            w.writerow([child, date(year, 10, 1 + i % 28).isoformat(), "asb_incident", "no",
                        "police"])


def _start(args: list[str], env: dict[str, str], delay: float = 0.0) -> subprocess.Popen[str]:
    if delay:
        time.sleep(delay)
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _family_events(app: Any) -> int:
    return sum(1 for r in app.rows() if loads(r.state)["envelope"]["stream"].startswith(
        "family/"))


def test_writers_at_once_leave_a_ledger_that_verifies_and_tells_the_truth(
        db_url: str, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    _, claimable = _county(db_url, keys, tmp_path)
    assert len(claimable) >= 3 * ROUNDS, claimable
    children = _children(tmp_path)
    env = {**os.environ, "CLAIMLEDGER_DB": db_url, "CLAIMLEDGER_KEY_DIR": str(keys),
           "CLAIMLEDGER_LOCK_WAIT": "60"}
    env.pop("CLAIMLEDGER_NOW", None)
    submitted: dict[str, dict[str, Any]] = {}
    sealed: list[dict[str, Any]] = []
    refusals: Counter[str] = Counter()
    admin = Settings(db=db_url, key_dir=keys, actor="admin")
    for n in range(ROUNDS):
        big, small = tmp_path / f"attendance-{n}.csv", tmp_path / f"incidents-{n}.csv"
        _attendance(big, children, 2030 + n)
        _incidents(small, children, 2030 + n)
        before = _family_events(open_app(admin))
        a, b, c = claimable[3 * n: 3 * n + 3]
        procs: dict[str, subprocess.Popen[str]] = {}
        procs["ingest-big"] = _start(["--actor", "data-officer", "ingest", "--json",
                                      "attendance", str(big)], env)
        procs["ingest-small"] = _start(["--actor", "data-officer", "ingest", "--json",
                                        "incidents", str(small)], env)
        for who, (family, on) in (("auditor-1", a), ("auditor-2", b), ("auditor-1", c),
                                  ("auditor-2", c)):
            procs[f"{who} {family}"] = _start(["--actor", who, "claim", "submit", family,
                                               "--on", on, "--json"], env)
        procs["seal-early"] = _start(["--actor", "admin", "seal", "--json"], env)
        procs["seal-late"] = _start(["--actor", "admin", "seal", "--json"], env, delay=0.4)
        appended = 0
        pending = dict(procs)
        while pending:
            name, p = pending.popitem()
            out, err = p.communicate(timeout=240)
            assert "Traceback" not in err, (name, err)
            if p.returncode == 2:
                line = err.strip()
                assert "\n" not in line and any(r in line for r in REFUSALS), (name, err)
                refusals[next(r for r in REFUSALS if r in line)] += 1
                if name.startswith("ingest") and "already has" not in line:
                    # A conflict or a busy ledger says "retry the command": the operator does.
                    pending[name] = _start(p.args[len(CLI):], env)  # type: ignore[index]
                continue
            assert p.returncode == 0, (name, p.returncode, out, err)
            result = json.loads(out)
            if name.startswith("ingest"):
                appended += result["appended"]
            elif name.startswith("seal"):
                if result["sealed"]:
                    sealed.append(result)
            else:
                assert result["claim_id"] not in submitted, result
                submitted[result["claim_id"]] = result
        app = open_app(admin)
        assert _family_events(app) - before == appended, "ingest reports what it wrote"
        # The two submits of the same family: exactly one claim, the other refused clearly.
        assert sum(1 for cid in submitted if cid.startswith(c[0] + "/")) == 1

    app = open_app(admin)
    result = app.verify()
    assert result.ok, result.reasons
    positions: dict[str, int] = {}
    claims_in_ledger: set[str] = set()
    checkpoints: dict[int, tuple[str, int]] = {}
    for index, row in enumerate(app.rows(), start=1):
        env_ = loads(row.state)["envelope"]
        if env_["type"] == "Claim.Submitted":
            cid = env_["stream"].removeprefix("claim/")
            claims_in_ledger.add(cid)
            positions[cid] = index  # its place in ledger order (positions may skip)
        elif env_["type"] == "Ledger.Checkpointed":
            p = loads(row.state)["payload"]
            checkpoints[p["tree_size"]] = (p["root"], row.position)
    assert claims_in_ledger == set(submitted), "exactly the claims the commands reported"
    for cid, r in submitted.items():
        cp = r["checkpoint"]
        assert cp["sealed"], r
        assert checkpoints[cp["tree_size"]][0] == cp["root"], r
        assert positions[cid] <= cp["tree_size"], r  # the claim's checkpoint covers it
    for s in sealed:
        assert checkpoints[s["tree_size"]] == (s["root"], s["checkpoint_position"]), s
    assert len(submitted) == 3 * ROUNDS
    assert refusals["already has a"] == ROUNDS
