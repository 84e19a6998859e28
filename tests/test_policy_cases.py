"""Every policy test case under tests/cases/: a family's story from a source document, and the
outcomes and decision the policy must give it (format: the end of docs/policy-format.md).

Cases name their policy by id: it is read from policies/, or for the engine's own cases from
tests/fixtures/policies/. No case files means no cases, not an error.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest

from claimledger.policy.cases import load_case, run_case
from claimledger.policy.library import find_policy
from claimledger.policy.model import Policy

HERE = Path(__file__).parent
ROOTS = (HERE.parent / "policies", HERE / "fixtures" / "policies")
CASES = sorted((HERE / "cases").glob("**/*.toml"))


@cache
def policy(policy_id: str) -> Policy:
    for root in ROOTS:
        if (root / f"{policy_id}.toml").is_file():
            return find_policy(policy_id, root)
    raise AssertionError(f"no policy {policy_id} in {', '.join(str(r) for r in ROOTS)}")


@pytest.mark.parametrize("path", CASES, ids=[str(p.relative_to(HERE / "cases")) for p in CASES])
def test_policy_case(path: Path) -> None:
    case = load_case(path)
    failures = run_case(case, policy(case.policy_id))
    assert not failures, f"{case.story}\n(source: {case.source})\n  " + "\n  ".join(failures)


def test_the_runner_reports_a_wrong_expectation() -> None:
    """A case runner that cannot fail would make every case above worthless."""
    case = load_case(HERE / "cases" / "engine" / "carters-claimable-by-progress.toml")
    assert run_case(case, policy(case.policy_id)) == []
    flipped = replace(case, expects=(replace(case.expects[0], met=False),),
                      decision=replace(case.decision, route="employment",  # type: ignore[arg-type]
                                       reasons_contain=("no such reason",),
                                       problems_not_met=("crime_asb",),
                                       problems_met=("health",)))
    failures = run_case(flipped, policy(case.policy_id))
    assert failures[0].startswith("outcome crime.1: expected met = False, got True")
    assert failures[1].startswith("decision route: expected employment, got progress")
    assert failures[2].startswith("decision reasons lack 'no such reason'")
    assert failures[3].startswith("problem health: not recorded for the family")
    assert failures[4].startswith("problem crime_asb: expected met = False, got True")


def test_a_case_with_an_unknown_key_is_refused(tmp_path: Path) -> None:
    from claimledger.errors import PolicyError

    text = (HERE / "cases" / "engine" / "carters-claimable-by-progress.toml").read_text()
    bad = tmp_path / "typo.toml"
    bad.write_text(text.replace("sessions_absent = 5", "sessions_absnet = 5"))
    with pytest.raises(PolicyError) as caught:
        load_case(bad)
    assert caught.value.key == "attendance[0].sessions_absnet"
