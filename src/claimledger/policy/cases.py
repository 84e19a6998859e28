"""Policy test cases as data: a family's story in TOML, the outcomes and decision it should get.

``tests/cases/<authority>/*.toml`` (format at the end of ``docs/policy-format.md``) are written
from the source documents by the people who encode the policies, so a case file is checked as
strictly as a policy: an unknown key or a bad value names the file, key and reason rather
than quietly testing something else. :func:`run_case` returns the failures as sentences.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..errors import PolicyError
from .evidence import (
    CARE_STATUSES,
    EMPLOYMENT_KINDS,
    INCIDENT_KINDS,
    PROBLEMS,
    ROLES,
    SETTINGS,
    STAGES,
    Attachment,
    AttendanceTerm,
    Attestation,
    CareStatus,
    EmploymentSpell,
    FamilyEvidence,
    Incident,
    Indicator,
    Judgement,
    Member,
    Score,
)
from .model import Policy

# column -> (type, required, default); types: str, date, int, bool, flag (bool or "yes"/"no")
Columns = dict[str, tuple[str, bool, Any]]
TABLES: dict[str, tuple[type, Columns, dict[str, tuple[str, ...]]]] = {
    "members": (Member, {"ref": ("str", True, None), "role": ("str", True, None),
                         "birth_date": ("date", True, None)}, {"role": ROLES}),
    "indicators": (Indicator, {
        "problem": ("str", True, None), "indicator": ("str", True, None),
        "member_ref": ("str", False, None), "observed_on": ("date", True, None),
        "stage": ("str", True, None), "source": ("str", False, "")},
        {"problem": PROBLEMS, "stage": STAGES}),
    "attendance": (AttendanceTerm, {
        "member_ref": ("str", True, None), "term_start": ("date", True, None),
        "term_end": ("date", True, None), "sessions_possible": ("int", True, None),
        "sessions_absent": ("int", True, None), "unauthorised_absent": ("int", False, 0),
        "fixed_term_exclusions": ("int", False, 0), "permanent_exclusion": ("flag", False, False),
        "setting": ("str", False, "school"), "source": ("str", False, "")},
        {"setting": SETTINGS}),
    "incidents": (Incident, {
        "member_ref": ("str", True, None), "occurred_on": ("date", True, None),
        "kind": ("str", True, None), "serious": ("flag", False, False),
        "source": ("str", False, "")}, {"kind": INCIDENT_KINDS}),
    "employment": (EmploymentSpell, {
        "member_ref": ("str", True, None), "kind": ("str", True, None),
        "benefit": ("str", False, None), "start_on": ("date", True, None),
        "end_on": ("date", False, None), "hours_per_week": ("int", False, None),
        "source": ("str", False, "")}, {"kind": EMPLOYMENT_KINDS}),
    "care_status": (CareStatus, {
        "member_ref": ("str", True, None), "status": ("str", True, None),
        "start_on": ("date", True, None), "end_on": ("date", False, None),
        "source": ("str", False, "")}, {"status": CARE_STATUSES}),
    "scores": (Score, {
        "member_ref": ("str", True, None), "instrument": ("str", True, None),
        "assessed_on": ("date", True, None), "score": ("int", True, None),
        "assessor": ("str", False, "")}, {}),
    "judgements": (Judgement, {
        "judged_on": ("date", True, None), "practitioner": ("str", True, None),
        "problem": ("str", True, None), "progress": ("flag", True, None),
        "sustained": ("flag", True, None), "intensity_reduced": ("flag", True, None),
        "note": ("str", False, "")}, {"problem": (*PROBLEMS, "all")}),
    "attestations": (Attestation, {
        "member_ref": ("str", False, None), "outcome": ("str", True, None),
        "attested_on": ("date", True, None), "practitioner": ("str", True, None),
        "evidence": ("str", False, "")}, {}),
}
FAMILY: Columns = {"attached_on": ("date", True, None), "lead_professional": ("str", False, None),
                   "assessment_on": ("date", False, None), "plan_on": ("date", False, None)}
TOP = ("policy", "story", "source", "as_of", "note", "family", *TABLES, "expect", "decision")
ROUTE_NAMES = ("progress", "employment", "none")


@dataclass(frozen=True, slots=True)
class OutcomeExpectation:
    outcome: str
    met: bool
    reason_contains: str | None = None


@dataclass(frozen=True, slots=True)
class DecisionExpectation:
    eligible: bool | None = None
    claimable: bool | None = None
    route: str | None = None  # "progress" | "employment" | "none"; None = not checked
    reasons_contain: tuple[str, ...] = ()
    #: problems the family has whose verdict is met / not met (the answers mapping decides it)
    problems_met: tuple[str, ...] = ()
    problems_not_met: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyCase:
    path: str
    policy_id: str
    story: str
    source: str
    as_of: date
    evidence: FamilyEvidence
    expects: tuple[OutcomeExpectation, ...]
    decision: DecisionExpectation | None


class _Reader:
    def __init__(self, file: str):
        self.file = file

    def fail(self, key: str, reason: str) -> PolicyError:
        return PolicyError(self.file, key, reason)

    def table(self, value: Any, key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, "expected a table")
        for name in value:
            if name not in allowed:
                raise self.fail(f"{key}.{name}" if key else name,
                                f"unknown key (allowed here: {', '.join(allowed)})")
        return value

    def value(self, t: dict[str, Any], name: str, spec: tuple[str, bool, Any], key: str,
              choices: tuple[str, ...] = ()) -> Any:
        kind, required, default = spec
        where = f"{key}.{name}"
        if name not in t:
            if required:
                raise self.fail(where, "missing required key")
            return default
        v = t[name]
        if kind == "date":
            if isinstance(v, datetime) or not isinstance(v, date):
                raise self.fail(where, f"expected a date such as 2016-03-31, found {v!r}")
        elif kind == "int":
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise self.fail(where, f"expected a whole number >= 0, found {v!r}")
        elif kind == "flag":
            if v in ("yes", "no"):
                v = v == "yes"
            elif not isinstance(v, bool):
                raise self.fail(where, f'expected true/false or "yes"/"no", found {v!r}')
        elif not isinstance(v, str):
            raise self.fail(where, f"expected a string, found {v!r}")
        if choices and v not in choices:
            raise self.fail(where, f"'{v}' is not one of: {', '.join(choices)}")
        return v


def load_case(path: str | Path) -> PolicyCase:
    file = str(path)
    r = _Reader(file)
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise PolicyError(file, "", f"cannot read case: {e}") from None
    r.table(doc, "", TOP)
    for name in ("policy", "story", "source", "as_of", "family"):
        if name not in doc:
            raise r.fail(name, "missing required key")
    as_of = r.value(doc, "as_of", ("date", True, None), "")
    fam = r.table(doc["family"], "family", tuple(FAMILY))
    attachment = Attachment(**{c: r.value(fam, c, spec, "family") for c, spec in FAMILY.items()},
                            event_id="family")
    records: dict[str, tuple[Any, ...]] = {}
    for table, (cls, columns, choices) in TABLES.items():
        rows = doc.get(table, [])
        if not isinstance(rows, list):
            raise r.fail(table, "expected an array of tables ([[...]])")
        built = []
        for i, row in enumerate(rows):
            key = f"{table}[{i}]"
            t = r.table(row, key, tuple(columns))
            fields = {c: r.value(t, c, spec, key, choices.get(c, ()))
                      for c, spec in columns.items()}
            built.append(cls(**fields, event_id=key))
        records[table] = tuple(built)
    evidence = FamilyEvidence(family_ref=Path(path).stem, policy_id=str(doc["policy"]),
                              attachment=attachment, **records)
    expects = []
    for i, e in enumerate(doc.get("expect", [])):
        key = f"expect[{i}]"
        t = r.table(e, key, ("outcome", "met", "reason_contains"))
        expects.append(OutcomeExpectation(
            r.value(t, "outcome", ("str", True, None), key),
            r.value(t, "met", ("flag", True, None), key),
            r.value(t, "reason_contains", ("str", False, None), key)))
    decision = None
    if "decision" in doc:
        t = r.table(doc["decision"], "decision",
                    ("eligible", "claimable", "route", "reasons_contain", "problems_met",
                     "problems_not_met"))
        lists: dict[str, tuple[str, ...]] = {}
        for name in ("reasons_contain", "problems_met", "problems_not_met"):
            items = t.get(name, [])
            if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
                raise r.fail(f"decision.{name}", "expected a list of strings")
            lists[name] = tuple(items)
        decision = DecisionExpectation(
            r.value(t, "eligible", ("flag", False, None), "decision"),
            r.value(t, "claimable", ("flag", False, None), "decision"),
            r.value(t, "route", ("str", False, None), "decision", ROUTE_NAMES),
            lists["reasons_contain"], lists["problems_met"], lists["problems_not_met"])
    if not expects and decision is None:
        raise r.fail("expect", "a case must check at least one outcome or the decision")
    return PolicyCase(file, str(doc["policy"]), str(doc["story"]), str(doc["source"]), as_of,
                      evidence, tuple(expects), decision)


def run_case(case: PolicyCase, policy: Policy) -> list[str]:
    """Every way the engine's answer differs from the case's expectations (empty: it passes)."""
    from ..evaluate.decide import decide, evaluate_outcome

    failures: list[str] = []
    for e in case.expects:
        outcome = policy.outcome(e.outcome)
        if outcome is None:
            failures.append(f"outcome {e.outcome}: not an outcome of {policy.id}")
            continue
        got = evaluate_outcome(policy, outcome, case.evidence, case.as_of)
        if got.met != e.met:
            failures.append(f"outcome {e.outcome}: expected met = {e.met}, got {got.met}: "
                            f"{got.reason}")
        elif e.reason_contains and e.reason_contains not in got.reason:
            failures.append(f"outcome {e.outcome}: reason lacks {e.reason_contains!r}: "
                            f"{got.reason}")
    if case.decision is not None:
        d = decide(policy, case.evidence, case.as_of)
        want = case.decision
        route = d.route or "none"
        for name, expected, actual in (("eligible", want.eligible, d.eligible),
                                       ("claimable", want.claimable, d.claimable),
                                       ("route", want.route, route)):
            if expected is not None and expected != actual:
                failures.append(f"decision {name}: expected {expected}, got {actual}; "
                                f"reasons: {' | '.join(d.reasons)}")
        text = " | ".join(d.reasons)
        for needle in want.reasons_contain:
            if needle not in text:
                failures.append(f"decision reasons lack {needle!r}: {text}")
        verdicts = {p.problem: p for p in d.problems}
        for expected, names in ((True, want.problems_met), (False, want.problems_not_met)):
            for name in names:
                p = verdicts.get(name)
                if p is None:
                    failures.append(f"problem {name}: not recorded for the family")
                elif p.met != expected:
                    failures.append(f"problem {name}: expected met = {expected}, got {p.met}: "
                                    f"{p.reason}")
    return failures


ELIGIBILITY, CLAIM, EMPLOYMENT_ROUTE = "[eligibility]", "[claim]", "[claim.employment_route]"
ROUTE_NOT_MET = "employment route not met"


def rules_tested(case: PolicyCase) -> list[tuple[str, bool]]:
    """(rule, met) for each rule the case checks: an outcome id by its ``[[expect]]``;
    eligibility and the claim conditions by the ``[decision]``. The employment route counts
    as met when the case expects ``route = "employment"``, and as not met when it expects a
    reason starting "employment route not met"."""
    out = [(e.outcome, e.met) for e in case.expects]
    d = case.decision
    if d is not None:
        if d.eligible is not None:
            out.append((ELIGIBILITY, d.eligible))
        if d.claimable is not None:
            out.append((CLAIM, d.claimable))
        if d.route == "employment":
            out.append((EMPLOYMENT_ROUTE, True))
        if any(r.startswith(ROUTE_NOT_MET) for r in d.reasons_contain):
            out.append((EMPLOYMENT_ROUTE, False))
    return out


def coverage(policy: Policy, cases: list[PolicyCase]
             ) -> dict[str, tuple[list[str], list[str]]]:
    """For eligibility, every outcome, the claim rule and the employment route of ``policy``:
    the cases (by path) that expect it met and those that expect it not met."""
    rules = [ELIGIBILITY, *(o.id for o in policy.outcomes)]
    if policy.claim is not None:
        rules.append(CLAIM)
        if policy.claim.employment_route is not None:
            rules.append(EMPLOYMENT_ROUTE)
    out: dict[str, tuple[list[str], list[str]]] = {r: ([], []) for r in rules}
    for case in cases:
        if case.policy_id != policy.id:
            continue
        for rule, met in rules_tested(case):
            if rule in out:
                out[rule][0 if met else 1].append(case.path)
    return out
