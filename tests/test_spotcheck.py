"""Spot checks. The ministry re-checks a sample of the claims a council made.

The sample must be drawn so that nobody can choose which claims are looked at, and so that
anyone can later re-derive it: the seed, rate, population and choice are recorded as an
event, and the same ledger with the same seed gives the same sample.
"""

from __future__ import annotations

import itertools
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from claimledger.application import Settings, open_app
from claimledger.audit import spotcheck
from claimledger.domain.claim import SpotCheckSample
from county import County
from test_bundle import family, run_inprocess

PROGRESS = [f"P-{i}" for i in range(1, 7)]
EMPLOYMENT = ["E-1", "E-2"]


def merged(*families: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for f in families:
        for kind, rows in f.items():
            out.setdefault(kind, []).extend(rows)
    return out


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> County:
    """Six families turned around (progress route) and two whose adult left JSA for work
    while a child's attendance stayed poor (employment route). P-1..P-3 claimed on 31 March,
    the rest on 20 March; P-6's claim was rejected by the internal auditor."""
    c = County(tmp_path_factory.mktemp("spot"), run_inprocess)
    c.init("Worcestershire")
    c.ingest(merged(*(family(r, 5) for r in PROGRESS),
                    *(family(r, 40, into_work=True) for r in EMPLOYMENT)),
             now="2016-03-20T10:00:00Z")
    for n, ref in enumerate(PROGRESS + EMPLOYMENT):
        on = "2016-03-31" if ref in ("P-1", "P-2", "P-3") else "2016-03-20"
        c.cli("claim", "submit", ref, "--on", on, now=f"2016-04-02T09:{n:02d}:00Z")
    c.cli("claim", "reject", "P-6/progress", "--reason", "judgement unsigned",
          now="2016-04-03T09:00:00Z")
    return c


STANDING = sorted([f"{r}/progress" for r in PROGRESS[:5]] + [f"{r}/employment" for r in
                                                              EMPLOYMENT])


_minutes = itertools.count()


def later() -> str:
    """The ledger clock of the next write: the shared county's clock only moves forward."""
    n = next(_minutes)
    return f"2016-05-{1 + n // 1440:02d}T{n // 60 % 24:02d}:{n % 60:02d}:00Z"


def draw(c: County, *args: str) -> dict[str, Any]:
    return c.cli("spotcheck", "sample", *args, "--json", now=later(), actor="dlUHC-checker")[1]


def test_the_same_ledger_and_seed_give_the_same_sample(county: County):
    first = draw(county, "--rate", "0.5", "--seed", "2016")
    again = draw(county, "--rate", "50%", "--seed", "2016")
    other = draw(county, "--rate", "0.5", "--seed", "2017")
    assert first["population"] == len(STANDING) == 7
    assert len(first["chosen"]) == math.ceil(Decimal("0.5") * 7) == 4
    assert first["chosen"] == again["chosen"] and first["rate"] == again["rate"] == "0.5"
    assert first["sample_id"] != again["sample_id"]
    assert other["chosen"] != first["chosen"]
    assert set(first["chosen"]) <= set(STANDING)


def _no_floats(value: Any) -> bool:
    if isinstance(value, float):
        return False
    if isinstance(value, dict):
        return all(_no_floats(v) for v in value.values())
    if isinstance(value, list):
        return all(_no_floats(v) for v in value)
    return True


def test_the_recorded_event_lets_anyone_re_derive_the_sample(county: County):
    drawn = draw(county, "--rate", "0.3", "--seed", "77")
    app = open_app(Settings(db=county.db, key_dir=county.keys))
    (_, rec), = app.stream_records(SpotCheckSample.stream_name(drawn["sample_id"]))
    p = rec["payload"]
    assert rec["envelope"]["type"] == "SpotCheckSample.Drawn"
    assert rec["envelope"]["actor"] == "dlUHC-checker"
    assert _no_floats(p) and p["rate"] == "0.3" and p["seed"] == 77
    assert p["population"] == STANDING and p["chosen"] == drawn["chosen"]
    # by hand: random.Random("77") over the sorted population, ceil(0.3 x 7) = 3 claims
    assert spotcheck.choose(p["population"], Decimal(p["rate"]), p["seed"]) == p["chosen"]
    assert len(p["chosen"]) == 3

    code, out, _ = county.cli("spotcheck", "verify", drawn["sample_id"])
    assert code == 0 and "re-derived: same population, same 3 claims" in out


def test_a_sample_stays_re_derivable_after_the_ledger_grows(tmp_path: Path, db_url: str):
    """On SQLite and PostgreSQL: later claims and a withdrawal do not change the population
    a sample was drawn from."""
    c = County(tmp_path, run_inprocess, db=db_url)
    c.init("Worcestershire")
    c.ingest(merged(family("G-1", 5), family("G-2", 5), family("G-3", 5)),
             now="2016-03-20T10:00:00Z")
    c.cli("claim", "submit", "G-1", "--on", "2016-03-31", now="2016-04-02T09:00:00Z")
    c.cli("claim", "submit", "G-2", "--on", "2016-03-31", now="2016-04-02T09:01:00Z")
    drawn = draw(c, "--rate", "0.5", "--seed", "5")
    c.cli("claim", "submit", "G-3", "--on", "2016-03-31", now="2016-05-02T09:00:00Z")
    c.cli("claim", "withdraw", "G-1/progress", "--reason", "duplicate",
          now="2016-05-03T09:00:00Z")
    _, checked, _ = c.cli("spotcheck", "verify", drawn["sample_id"], "--json")
    assert checked["ok"] and checked["population"] == 2


def test_a_sample_that_was_not_drawn_from_its_seed_is_exposed(tmp_path: Path):
    """Someone records a 'sample' that happens to pick the claims they like, or leaves an
    awkward claim out of the population: re-deriving it says so."""
    c = County(tmp_path, run_inprocess)
    c.init("Worcestershire")
    c.ingest(merged(*(family(f"H-{i}", 5) for i in range(1, 5))), now="2016-03-20T10:00:00Z")
    for i in range(1, 5):
        c.cli("claim", "submit", f"H-{i}", "--on", "2016-03-31", now=f"2016-04-02T09:0{i}:00Z")
    everyone = [f"H-{i}/progress" for i in range(1, 5)]
    app = open_app(Settings(db=c.db, key_dir=c.keys, now="2016-05-01T09:00:00Z", actor="x"))
    honest = spotcheck.choose(everyone, Decimal("0.5"), 9)
    picked = sorted(set(everyone) - set(honest))
    app.commit(SpotCheckSample.draw(
        app.context(), sample_id="SC-0001", rate="0.5", seed=9, stratify=None, from_on=None,
        to_on=None, population=everyone, chosen=picked))
    code, out, err = c.cli("spotcheck", "verify", "SC-0001", ok=False)
    assert code == 1 and "DIFFERS" in out and f"chooses {honest}" in err

    smaller = everyone[1:]
    app2 = open_app(Settings(db=c.db, key_dir=c.keys, now="2016-05-01T09:01:00Z", actor="x"))
    app2.commit(SpotCheckSample.draw(
        app2.context(), sample_id="SC-0002", rate="0.5", seed=9, stratify=None, from_on=None,
        to_on=None, population=smaller, chosen=spotcheck.choose(smaller, Decimal("0.5"), 9)))
    code, _, err = c.cli("spotcheck", "verify", "SC-0002", ok=False)
    assert code == 1 and "left out: H-1/progress" in err


def test_the_population_is_standing_claims_in_the_date_range(county: County):
    late = draw(county, "--rate", "1", "--seed", "1", "--from", "2016-03-25")
    assert late["chosen"] == ["P-1/progress", "P-2/progress", "P-3/progress"]
    early = draw(county, "--rate", "100%", "--seed", "1", "--to", "2016-03-20")
    assert early["chosen"] == sorted(["P-4/progress", "P-5/progress", "E-1/employment",
                                      "E-2/employment"])  # P-6 was rejected
    code, _, err = county.cli("spotcheck", "sample", "--rate", "0.1", "--seed", "1",
                              "--from", "2020-01-01", ok=False)
    assert code == 2 and "no standing claims" in err


def test_stratified_by_route_each_route_gets_its_share(county: County):
    s = draw(county, "--rate", "0.25", "--seed", "3", "--stratify", "route")
    routes = [c.rsplit("/", 1)[1] for c in s["chosen"]]
    # ceil(0.25 x 5) progress claims and ceil(0.25 x 2) employment claims
    assert routes.count("progress") == 2 and routes.count("employment") == 1
    assert s["stratify"] == "route"
    plain = draw(county, "--rate", "0.25", "--seed", "3")
    assert len(plain["chosen"]) == math.ceil(Decimal("0.25") * 7) == 2


def test_a_spot_check_result_is_recorded_on_the_claim_with_its_checker(county: County):
    s = draw(county, "--rate", "1", "--seed", "11")
    _, r, _ = county.cli("spotcheck", "record", "E-1/employment", "--result", "failed",
                         "--reason", "payslips show 12 hours a week, not 30", "--json",
                         now=later(), actor="dlUHC-checker")
    assert r["sample_id"] == s["sample_id"] and r["by"] == "dlUHC-checker"
    county.cli("spotcheck", "record", "P-1/progress", "--result", "upheld", "--reason",
               "school letters confirm attendance", "--sample", s["sample_id"],
               now=later(), actor="dlUHC-checker")

    _, listed, _ = county.cli("claim", "list", "--json")
    checks = {c["claim_id"]: c["spot_checks"] for c in listed["claims"]}
    assert checks["E-1/employment"] == ["failed"] and checks["P-1/progress"] == ["upheld"]
    _, explained, _ = county.cli("claim", "explain", "E-1/employment", "--json")
    last = explained["history"][-1]
    assert last["type"] == "Claim.SpotChecked" and last["actor"] == "dlUHC-checker"
    assert last["reason"] == "payslips show 12 hours a week, not 30"
    _, samples, _ = county.cli("spotcheck", "list", "--json")
    mine = next(x for x in samples["samples"] if x["sample_id"] == s["sample_id"])
    assert mine["results"] == {"E-1/employment": "failed", "P-1/progress": "upheld"}


@pytest.mark.parametrize("args, message", [
    (["--rate", "0", "--seed", "1"], "more than 0"),
    (["--rate", "1.5", "--seed", "1"], "at most 1"),
    (["--rate", "ten", "--seed", "1"], "not a decimal fraction"),
    (["--rate", "0.1", "--seed", "1", "--from", "2016-04-01", "--to", "2016-03-01"],
     "is before --from"),
])
def test_bad_sample_requests_are_refused(county: County, args: list[str], message: str):
    code, _, err = county.cli("spotcheck", "sample", *args, ok=False)
    assert code == 2 and message in err


def test_bad_spot_check_records_are_refused(county: County):
    code, _, err = county.cli("spotcheck", "record", "X-9/progress", "--result", "upheld",
                              "--reason", "r", ok=False)
    assert code == 2 and "no claim 'X-9/progress'" in err
    code, _, _ = county.cli("spotcheck", "record", "P-1/progress", "--result", "maybe",
                            "--reason", "r", ok=False)
    assert code == 2
    narrow = draw(county, "--rate", "1", "--seed", "1", "--from", "2016-03-25")
    code, _, err = county.cli("spotcheck", "record", "E-2/employment", "--result", "upheld",
                              "--reason", "r", "--sample", narrow["sample_id"], ok=False,
                              now=later())
    assert code == 2 and "did not choose claim E-2/employment" in err
