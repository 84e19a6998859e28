"""The cohort projection, kept up to date incrementally and rebuildable, on both backends.

The figures are checked against an oracle that knows nothing of the view: each family's
evidence rebuilt by the evaluation timeline (corrections applied) and each claim's own event
history. The incremental view, the view rebuilt from scratch and the oracle must agree on
every date asked, before and after more events arrive.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from claimledger.application import LedgerApp, Settings, open_app
from claimledger.audit import claims
from claimledger.audit.cohort import (
    CLAIM_STATES,
    TOPICS,
    Change,
    catch_up,
    follow,
    open_view,
    rebuild,
    report,
)
from claimledger.domain.claim import Claim
from claimledger.domain.family import Family
from claimledger.errors import UsageError
from claimledger.evaluate.timeline import select_evidence
from claimledger.ingest.importer import ingest
from claimledger.policy.evidence import PROBLEMS
from claimledger.synth import KINDS, generate
from county import HEADERS, County
from test_claim_stories import worcestershire_family

LATER = "2099-01-01T00:00:00.000000Z"
STATE_OF = {"Claim.Validated": "validated", "Claim.Rejected": "rejected",
            "Claim.Withdrawn": "withdrawn"}


def streams(app: LedgerApp, family_refs: list[str]) -> dict[str, Any]:
    """Every family's and claim's records, read once for the oracle."""
    return {"families": [app.stream_records(Family.stream_name(r)) for r in family_refs],
            "claims": [app.stream_records(Claim.stream_name(c)) for c in claims.claim_ids(app)]}


def oracle(read: dict[str, Any], as_of: date) -> dict[str, Any]:
    """The report's figures computed the slow way, from each stream."""
    identified = attached = 0
    problems = {p: {"identification": 0, "engagement": 0, "families": 0} for p in PROBLEMS}
    for records in read["families"]:
        ev = select_evidence(records, as_of=as_of, known_at=LATER)
        if ev.identified_on > as_of:
            continue
        identified += 1
        attached += ev.attachment is not None
        stages = {(i.problem, i.stage) for i in ev.indicators}
        for problem, stage in stages:
            problems[problem][stage] += 1
        for problem in {p for p, _ in stages}:
            problems[problem]["families"] += 1
    routes: Counter[str] = Counter()
    states: Counter[str] = Counter()
    for records in read["claims"]:
        sub = records[0][1]["payload"]
        if sub["claimed_on"] > as_of.isoformat():
            continue
        state = "submitted"
        for _, r in records[1:]:
            env = r["envelope"]
            if env["type"] in STATE_OF and env["recorded_at"][:10] <= as_of.isoformat():
                state = STATE_OF[env["type"]]
        routes[sub["route"]] += 1
        states[state] += 1
    return {"families": {"identified": identified, "attached": attached},
            "problems": problems, "total": sum(routes.values()),
            "by_route": {r: n for r, n in routes.items() if n},
            "by_state": {s: n for s, n in states.items() if n}}


def figures(result: dict[str, Any]) -> dict[str, Any]:
    c = result["claims"]
    return {"families": result["families"], "problems": result["problems"],
            "total": c["total"], "by_route": {r: n for r, n in c["by_route"].items() if n},
            "by_state": {s: n for s, n in c["by_state"].items() if n}}


def write_csv(folder: Path, kind: str, rows: list[dict[str, Any]]) -> Path:
    path = folder / f"more-{kind}.csv"
    cols = HEADERS[kind].split(",")
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        w.writerows([["" if r.get(c) is None else r[c] for c in cols] for r in rows])
    return path


def last_relevant_position(app: LedgerApp) -> int:
    last, start = 0, 1
    while page := app.recorder.select_notifications(start, 1000, topics=TOPICS):
        last = start = page[-1].id
        start += 1
    return last


@pytest.fixture
def county_ledger(settings_for: Callable[..., Settings], tmp_path: Path) -> dict[str, Any]:
    """A 24-family synthetic Worcestershire county, ingested, with its claimable families claimed.

    Identified across 2015-2019; the data officer loads it in January 2021 and the auditor
    submits every family the synthesiser meant to be claimable on its review date.
    """
    county = generate(tmp_path / "county", 24, seed=11)
    app = open_app(settings_for(now="2021-01-01T00:00:00Z"), must_exist=False)
    app.init("Worcestershire")
    for kind in KINDS:
        ingest(open_app(settings_for(now="2021-01-02T00:00:00Z", actor="data1")), kind,
               tmp_path / "county" / f"{kind}.csv")
    submitted = []
    for i, fam in enumerate(county["family_scenarios"]):
        if fam["scenario"] in ("progress", "employment"):
            r = claims.submit(open_app(settings_for(now=f"2021-01-05T09:{i:02d}:00Z")),
                              fam["family_ref"], date.fromisoformat(fam["review_on"]))
            submitted.append(r["claim_id"])
    assert len(submitted) >= 4, county["scenarios"]
    refs = [f["family_ref"] for f in county["family_scenarios"]]
    return {"refs": refs, "claims": submitted, "county": county, "dir": tmp_path / "county"}


def report_dates(app: LedgerApp, refs: list[str]) -> list[date]:
    """Yearly dates across the programme and both sides of two identification days."""
    days = [date(2015, 3, 31) + timedelta(days=365 * k) for k in range(7)]
    for ref in refs[3], refs[-1]:
        on = date.fromisoformat(app.find(Family, ref).identified_on)  # type: ignore[union-attr]
        days += [on - timedelta(days=1), on]
    return [*days, date(2021, 1, 4), date(2021, 2, 1), date(2021, 3, 1)]


def test_incremental_and_rebuilt_cohorts_agree_with_the_streams_before_and_after_more_events(
    county_ledger: dict[str, Any], settings_for: Callable[..., Settings], tmp_path: Path,
):
    refs, submitted = county_ledger["refs"], county_ledger["claims"]
    app = open_app(settings_for(now="2021-01-06T00:00:00Z"))
    view = open_view(app.location)
    first = catch_up(app, view)
    assert first > 0 and catch_up(app, view) == 0  # nothing new: nothing applied
    days = report_dates(app, refs)
    read = streams(app, refs)
    for d in days:
        assert figures(report(view, d)) == oracle(read, d), d
    some = report(view, date(2021, 1, 4))
    assert some["families"]["identified"] == 24
    assert some["claims"]["by_state"]["submitted"] == len(submitted)

    # Two reports asked at once: the one that read the old position loses the race, and the
    # tracking guard rolls its page back whole (here, a page that would add a family).
    with pytest.raises(IntegrityError):
        open_view(app.location).apply(
            [Change("family", ("GHOST", "2015-01-01", "family/GHOST#1"))],
            Tracking(app.name, 1))
    assert report(view, date(2021, 1, 4)) == some

    # More arrives. The auditor validates two claims in February, rejects one and the council
    # withdraws another in March. A corrected families file moves one family's identification
    # a year later; a corrected attachments file moves another's attachment; a new family is
    # identified with problems at identification and at engagement.
    def at(now: str, actor: str = "auditor1") -> LedgerApp:
        return open_app(settings_for(now=now, actor=actor))

    claims.validate(at("2021-02-01T10:00:00Z"), submitted[0], "evidence complete")
    claims.validate(at("2021-02-01T11:00:00Z"), submitted[1], "evidence complete")
    claims.reject(at("2021-03-01T10:00:00Z"), submitted[2], "judgement not signed")
    claims.withdraw(at("2021-03-01T11:00:00Z"), submitted[3], "duplicate of a paper claim")
    moved, reattached = refs[5], refs[6]
    fam = app.find(Family, moved)
    assert fam is not None
    later = date.fromisoformat(fam.identified_on) + timedelta(days=365)
    files = {
        "families": write_csv(tmp_path, "families", [
            {"family_ref": moved, "authority": fam.authority, "policy_id": fam.policy_id,
             "identified_on": later.isoformat()},
            {"family_ref": "NEW-1", "authority": fam.authority, "policy_id": fam.policy_id,
             "identified_on": "2019-06-03"}]),
        "attachments": write_csv(tmp_path, "attachments", [
            {"family_ref": reattached, "attached_on": "2020-12-01", "lead_professional": "LW-9",
             "assessment_on": "2020-12-02", "plan_on": "2020-12-03"}]),
        "indicators": write_csv(tmp_path, "indicators", [
            {"family_ref": "NEW-1", "member_ref": None, "problem": p, "indicator": i,
             "observed_on": on, "stage": stage, "source": "MASH"}
            for p, i, on, stage in (
                ("health", "alcohol_misuse", "2019-06-03", "identification"),
                ("crime_asb", "asb", "2019-06-03", "identification"),
                ("domestic_abuse", "police_callouts", "2019-09-10", "engagement"))]),
    }
    loaded = {kind: ingest(at("2021-03-02T09:00:00Z", "data1"), kind, files[kind])
              for kind in ("families", "attachments", "indicators")}
    assert [(r["appended"], r["corrected"]) for r in loaded.values()] == [(2, 1), (1, 1), (3, 0)]
    refs = [*refs, "NEW-1"]

    app = open_app(settings_for(now="2021-03-03T00:00:00Z"))
    assert catch_up(app, view) == 4 + 2 + 1 + 3  # claim moves, two families, one attachment
    days += [later - timedelta(days=1), later, date(2019, 9, 9), date(2019, 9, 10)]
    incremental = {d: report(view, d) for d in days}
    replayed = rebuild(app, view)
    assert replayed == first + 10
    read = streams(app, refs)
    for d in days:
        rebuilt = report(view, d)
        assert rebuilt == incremental[d], d
        assert figures(rebuilt) == oracle(read, d), d

    march = incremental[date(2021, 3, 1)]["claims"]["by_state"]
    assert (march["validated"], march["rejected"], march["withdrawn"]) == (2, 1, 1)
    feb = incremental[date(2021, 2, 1)]["claims"]["by_state"]
    assert (feb["validated"], feb["rejected"]) == (2, 0)
    assert set(CLAIM_STATES) == set(march)


def test_live_runner_keeps_the_view_current_on_postgres_and_is_refused_on_sqlite(
    backend: str, request: pytest.FixtureRequest, settings_for: Callable[..., Settings],
):
    """eventsourcing's ProjectionRunner drives the same projection where it can subscribe."""
    if backend == "sqlite":
        app = open_app(settings_for(), must_exist=False)
        app.init("Worcestershire")
        with pytest.raises(UsageError, match="PostgreSQL"):
            follow(app)
        return
    county_ledger = request.getfixturevalue("county_ledger")
    app = open_app(settings_for(now="2021-01-06T00:00:00Z"))
    refs, submitted = county_ledger["refs"], county_ledger["claims"]
    with follow(app) as runner:
        runner.wait(last_relevant_position(app), timeout=20)
        d = date(2021, 1, 4)
        assert figures(report(runner.view, d)) == oracle(streams(app, refs), d)
        later = open_app(settings_for(now="2021-02-01T10:00:00Z"))
        claims.validate(later, submitted[0], "evidence complete")
        runner.wait(last_relevant_position(app), timeout=20)
        d = date(2021, 2, 1)
        assert report(runner.view, d)["claims"]["by_state"]["validated"] == 1
        assert figures(report(runner.view, d)) == oracle(streams(app, refs), d)


@pytest.fixture
def small(tmp_path: Path, run, db_url: str) -> County:
    c = County(tmp_path, run, db=db_url)
    c.init("Worcestershire")
    return c


def test_report_cohort_command_counts_two_families_and_their_claims(small: County):
    """Two Worcestershire families identified on 1 May 2015, attached 1 June, claimed 31 March.

    On 31 May 2015 both are identified but neither attached; by March 2016 both are attached
    and both claims are in; W-1's claim is validated on 10 April, so on 31 March it is still
    submitted and on 30 April validated. Years later one family's data is erased.
    """
    small.ingest(worcestershire_family("W-1", 5), now="2016-03-20T10:00:00Z")
    small.ingest(worcestershire_family("W-2", 5), now="2016-03-21T10:00:00Z")
    small.cli("claim", "submit", "W-1", "--on", "2016-03-31", now="2016-04-02T09:00:00Z")
    small.cli("claim", "submit", "W-2", "--on", "2016-03-31", now="2016-04-02T09:05:00Z")
    small.cli("claim", "validate", "W-1/progress", now="2016-04-10T09:00:00Z")

    _, may, _ = small.cli("report", "cohort", "--as-of", "2015-05-31", "--json")
    assert may["families"] == {"identified": 2, "attached": 0}
    assert may["problems"]["education"] == {"identification": 2, "engagement": 0, "families": 2}
    assert may["problems"]["crime_asb"]["identification"] == 2
    assert may["problems"]["health"] == {"identification": 0, "engagement": 0, "families": 0}
    assert may["claims"]["total"] == 0 and may["processed"] > 0

    _, march, _ = small.cli("report", "cohort", "--as-of", "2016-03-31", "--json")
    assert march["processed"] == 0  # the view was already up to date
    assert march["families"] == {"identified": 2, "attached": 2}
    assert march["claims"]["by_route"] == {"progress": 2, "employment": 0}
    assert march["claims"]["by_state"]["submitted"] == 2

    _, april, _ = small.cli("report", "cohort", "--as-of", "2016-04-30", "--csv")
    rows = list(csv.reader(io.StringIO(april)))
    assert rows[0] == ["as_of", "group", "item", "count"]
    assert ["2016-04-30", "claims_state", "validated", "1"] in rows
    assert ["2016-04-30", "claims_state", "submitted", "1"] in rows
    assert ["2016-04-30", "families", "attached", "2"] in rows

    _, rebuilt, _ = small.cli("report", "cohort", "--as-of", "2016-03-31", "--rebuild", "--json")
    assert rebuilt["rebuilt"] and rebuilt["processed"] > 0
    assert {k: v for k, v in rebuilt.items() if k not in ("processed", "rebuilt")} == {
        k: v for k, v in march.items() if k not in ("processed", "rebuilt")}

    _, text, _ = small.cli("report", "cohort", "--as-of", "2016-03-31")
    assert "families identified" in text and "progress 2" in text

    # W-2's personal data is erased in 2022: its facts leave the cohort, its claim stays, and
    # a view rebuilt after the erasure (which can no longer read W-2's events) agrees.
    small.cli("erase", "W-2", "--reason", "retention period ended", now="2022-05-01T09:00:00Z")
    _, after, _ = small.cli("report", "cohort", "--as-of", "2016-03-31", "--json",
                            now="2022-05-02T09:00:00Z")
    assert after["processed"] == 1
    assert after["families"] == {"identified": 1, "attached": 1}
    assert after["problems"]["education"]["identification"] == 1
    assert after["claims"]["by_route"]["progress"] == 2
    _, again, _ = small.cli("report", "cohort", "--as-of", "2016-03-31", "--json", "--rebuild",
                            now="2022-05-02T09:00:00Z")
    assert {k: v for k, v in again.items() if k not in ("processed", "rebuilt")} == {
        k: v for k, v in after.items() if k not in ("processed", "rebuilt")}

    code, _, err = small.cli("report", "cohort", "--as-of", "31/03/2016", ok=False)
    assert code == 2 and "--as-of" in err
    code, _, err = small.cli("report", "cohort", "--as-of", "2016-03-31", "--json", "--csv",
                             ok=False)
    assert code == 2 and "--csv" in err
