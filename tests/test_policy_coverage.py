"""Each policy encodes every outcome of its source document, no more and no fewer.

Beside tests/cases/<authority>/ the person who encoded policies/<authority>/<plan>.toml lists,
in <plan>.outcomes.txt, every outcome id read from the document (one a line, '#' comments).
The policy must define exactly those ids.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from claimledger.policy.load import load_policy_file

HERE = Path(__file__).parent
POLICIES = HERE.parent / "policies"
CASES = HERE / "cases"
PLANS = sorted(POLICIES.glob("*/*.toml"))
LISTS = sorted(CASES.glob("*/*.outcomes.txt"))


def listed_ids(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


@pytest.mark.parametrize("plan", PLANS, ids=[str(p.relative_to(POLICIES)) for p in PLANS])
def test_policy_defines_exactly_the_outcomes_of_its_document(plan: Path) -> None:
    listing = CASES / plan.parent.name / f"{plan.stem}.outcomes.txt"
    assert listing.is_file(), f"{plan} has no outcome list {listing}"
    listed = listed_ids(listing)
    duplicates = sorted({i for i in listed if listed.count(i) > 1})
    assert not duplicates, f"{listing} lists {duplicates} more than once"
    defined = [o.id for o in load_policy_file(plan).outcomes]
    missing = [i for i in listed if i not in defined]
    extra = [i for i in defined if i not in listed]
    assert not missing and not extra, (f"{plan}: outcomes in the document but not the policy: "
                                       f"{missing}; in the policy but not the document: {extra}")


@pytest.mark.parametrize("listing", LISTS, ids=[str(p.relative_to(CASES)) for p in LISTS])
def test_every_outcome_list_belongs_to_a_policy(listing: Path) -> None:
    plan = POLICIES / listing.parent.name / listing.name.replace(".outcomes.txt", ".toml")
    assert plan.is_file(), f"{listing} lists outcomes for {plan}, which does not exist"
