"""Loading policy files: a mistake in a council's rules is caught on load, naming file, key, reason.

Each file in tests/broken_policies/single/ is the valid minimal plan of
tests/broken_policies/valid/ with one defect; its header says which key must be named and why.
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from claimledger.errors import EvaluationError, PolicyError, UsageError
from claimledger.policy.catalog import check, list_policies, show_policy
from claimledger.policy.library import check_policies, find_policy, load_policies, policy_in_force
from claimledger.policy.load import load_policy_bytes, load_policy_file
from claimledger.policy.model import AllOf, Dated, Leaf

HERE = Path(__file__).parent
BROKEN = HERE / "broken_policies"
VALID = BROKEN / "valid" / "minimal-plan.toml"
REPO_POLICIES = HERE.parent / "policies"


def _expectation(path: Path) -> tuple[str, str]:
    header = dict(line[2:].split(": ", 1) if ": " in line else (line[2:].rstrip(":"), "")
                  for line in path.read_text().splitlines()[:3] if line.startswith("# expect-"))
    return header["expect-key"], header["expect-reason"]


BROKEN_FILES = sorted((BROKEN / "single").glob("*.toml"))


def test_the_minimal_plan_the_broken_fixtures_start_from_is_valid() -> None:
    policy = load_policy_file(VALID)
    assert policy.id == "valid/minimal-plan"
    assert [o.id for o in policy.outcomes] == ["1.1", "2.1"]
    assert isinstance(policy.outcome("2.1").measure, AllOf)  # type: ignore[union-attr]


@pytest.mark.parametrize("path", BROKEN_FILES, ids=[p.stem for p in BROKEN_FILES])
def test_a_broken_policy_names_file_key_and_reason(path: Path) -> None:
    key, reason = _expectation(path)
    with pytest.raises(PolicyError) as caught:
        load_policy_file(path)
    err = caught.value
    assert err.file == str(path)
    assert err.key == key
    assert reason in err.reason
    assert str(err).startswith(f"{path}: ")


def test_there_is_a_broken_fixture_for_every_rule_the_loader_enforces() -> None:
    names = {p.stem for p in BROKEN_FILES}
    for rule in ("unknown-top-level-key", "unknown-measure-parameter", "unknown-measure-kind",
                 "missing-measure-parameter", "toml-float", "date-as-string",
                 "effective-to-before-from", "answers-unknown-indicator",
                 "outcome-unknown-problem", "id-not-path", "outcome-without-section",
                 "indicator-without-section", "problem-without-section"):
        assert rule in names


def test_check_policies_reports_every_broken_file_without_raising() -> None:
    result = check_policies(BROKEN_FILES)
    assert not result.ok
    assert {e.file for e in result.errors} == {str(p) for p in BROKEN_FILES}
    assert result.policies == ()
    assert all(r.startswith(str(BROKEN / "single")) for r in result.reasons)


def test_check_collects_several_errors_in_one_file(tmp_path: Path) -> None:
    text = VALID.read_text().replace('authority = "Testshire"\n',
                                     'authority = "Testshire"\ncolour = "blue"\n')
    text = text.replace("reduction_pct = 33\n", "reduction_pct = 33.3\n")
    path = tmp_path / "valid" / "minimal-plan.toml"
    path.parent.mkdir()
    path.write_text(text)
    result = check_policies([path])
    assert [e.key for e in result.errors] == ["outcomes[0].measure.reduction_pct", "colour"]


def test_two_plans_of_one_authority_may_not_overlap() -> None:
    root = BROKEN / "overlapping"
    with pytest.raises(PolicyError) as caught:
        load_policies(root)
    err = caught.value
    assert err.file.endswith("testshire/plan-2016.toml")
    assert err.key == "effective_from"
    assert "overlaps testshire/plan-2015 (2015-04-01..2016-03-31)" in err.reason
    result = check_policies(root)
    assert len(result.policies) == 2 and len(result.errors) == 1


def test_the_exact_bytes_and_their_sha256_are_kept_for_registration() -> None:
    data = VALID.read_bytes()
    policy = load_policy_bytes(data, "registered/valid/minimal-plan.toml")
    assert policy.content == data
    assert policy.sha256 == hashlib.sha256(data).hexdigest()
    assert policy.path == "registered/valid/minimal-plan.toml"


def test_bytes_that_are_not_utf8_are_refused() -> None:
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy_bytes(b"\xff\xfe", "valid/minimal-plan.toml")


def test_a_dated_parameter_switches_on_exactly_its_from_date() -> None:
    policy = load_policy_file(VALID)
    attendance = policy.outcome("2.1").measure.items[1]  # type: ignore[union-attr]
    assert isinstance(attendance, Leaf)
    dated = attendance.get("absence_below_pct")
    assert isinstance(dated, Dated)
    assert dated.at(date(2015, 4, 1)) == 15
    assert dated.at(date(2015, 12, 31)) == 15
    assert dated.at(date(2016, 1, 1)) == 10
    with pytest.raises(EvaluationError, match=r"absence_below_pct: no value in force on "
                                              r"2015-03-31 \(the first takes effect on "
                                              r"2015-04-01\)"):
        dated.at(date(2015, 3, 31))


def test_decimal_strings_load_as_decimals_never_floats(tmp_path: Path) -> None:
    path = tmp_path / "valid" / "minimal-plan.toml"
    path.parent.mkdir()
    path.write_text(VALID.read_text().replace("reduction_pct = 33\n", 'reduction_pct = "33.3"\n'))
    leaf = load_policy_file(path).outcome("1.1").measure  # type: ignore[union-attr]
    assert isinstance(leaf, Leaf)
    assert leaf.get("reduction_pct") == Decimal("33.3")


def test_every_policy_in_the_repository_is_valid() -> None:
    result = check_policies(REPO_POLICIES)
    assert result.ok, "\n".join(result.reasons)
    assert len(result.policies) == len(list(REPO_POLICIES.glob("*/*.toml")))


def test_the_policy_in_force_is_chosen_by_authority_and_date() -> None:
    first = load_policy_file(BROKEN / "overlapping" / "testshire" / "plan-2015.toml")
    later_text = (BROKEN / "overlapping" / "testshire" / "plan-2016.toml").read_bytes()
    later = load_policy_bytes(later_text.replace(b"2016-03-01", b"2016-04-01"),
                              "testshire/plan-2016.toml")
    plans = [first, later]
    assert policy_in_force(plans, "testshire", date(2016, 3, 31)) is first
    assert policy_in_force(plans, "Testshire", date(2016, 4, 1)) is later
    # a family names the plan it was identified under; the claim's date picks the plan
    assert policy_in_force(plans, "testshire/plan-2015", date(2017, 1, 1)) is later
    with pytest.raises(EvaluationError, match="no policy for 'testshire' is in force on "
                                              "2015-03-31"):
        policy_in_force(plans, "testshire", date(2015, 3, 31))
    with pytest.raises(EvaluationError, match="no policy for 'nowhere'"):
        policy_in_force(plans, "nowhere", date(2016, 1, 1))


def test_find_policy_loads_by_id_and_names_what_exists() -> None:
    root = BROKEN / "overlapping"
    assert find_policy("testshire/plan-2015", root).id == "testshire/plan-2015"
    with pytest.raises(UsageError, match="known: testshire/plan-2015, testshire/plan-2016"):
        find_policy("testshire/plan-2099", root)
    with pytest.raises(UsageError, match="not a policy id"):
        find_policy("../secrets", root)


def _walk(value: object) -> None:
    assert not isinstance(value, float)
    if isinstance(value, dict):
        for v in value.values():
            _walk(v)
    elif isinstance(value, list):
        for v in value:
            _walk(v)
    else:
        assert value is None or isinstance(value, str | int | bool)


def test_the_catalog_is_plain_data_for_the_cli() -> None:
    listing = list_policies(REPO_POLICIES)
    ids = [p["id"] for p in listing]
    assert "worcestershire/stronger-families-2015-16" in ids
    shown = show_policy("worcestershire/stronger-families-2015-16", REPO_POLICIES)
    absence = next(o for o in shown["outcomes"] if o["id"] == "2.2")["measure"]
    assert absence["absence_below_pct"][1]["from"] == "2016-04-01"
    assert absence["absence_below_pct"][1]["value"] == 10
    _walk(listing)
    _walk(shown)
    report = check(BROKEN / "overlapping")
    assert report["ok"] is False
    assert report["errors"][0]["key"] == "effective_from"
    _walk(report)


def test_a_policy_file_in_the_wrong_place_is_reported_not_ignored(tmp_path: Path) -> None:
    (tmp_path / "testshire").mkdir()
    (tmp_path / "testshire" / "plan.toml").write_text("")
    (tmp_path / "stray.toml").write_text("")
    result = check_policies(tmp_path)
    first = result.errors[0]
    assert Path(first.file).name == "stray.toml"
    assert first.reason == f"not read: a policy file lives at {tmp_path}/<authority>/<plan>.toml"
