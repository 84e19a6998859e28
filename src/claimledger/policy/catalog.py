"""Policies as plain data for ``claimledger policy list|show|check`` (text or ``--json``).

The CLI renders what these functions return and adds nothing: every figure is a string, int,
bool or ISO date, so the JSON carries no floats and reads the same as the TOML it came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from .library import check_policies, find_policy, load_policies
from .model import AllOf, AtLeast, Dated, EmploymentRule, Leaf, Measure, Policy


def _plain(value: Any) -> Any:
    if isinstance(value, Dated):
        return [{"from": v.start.isoformat(), "value": _plain(v.value), "section": v.section}
                for v in value.values]
    if isinstance(value, EmploymentRule):
        rule = {"benefit": value.benefit, "weeks": _plain(value.weeks)}
        if value.within_weeks is not None:
            rule["within_weeks"] = _plain(value.within_weeks)
        return rule
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def measure_dict(measure: Measure) -> dict[str, Any]:
    """A measure tree as the policy file writes it."""
    if isinstance(measure, Leaf):
        out: dict[str, Any] = {"kind": measure.kind}
        out.update({k: _plain(v) for k, v in measure.params})
    elif isinstance(measure, AtLeast):
        out = {"at_least": measure.n, "of": [measure_dict(m) for m in measure.items]}
    else:
        head = "all_of" if isinstance(measure, AllOf) else "any_of"
        out = {head: [measure_dict(m) for m in measure.items]}
    if measure.section:
        out["section"] = measure.section
    if measure.note:
        out["note"] = measure.note
    return out


def summary(policy: Policy) -> dict[str, Any]:
    return {
        "id": policy.id,
        "title": policy.title,
        "authority": policy.authority,
        "programme_phase": policy.programme_phase,
        "effective_from": policy.effective_from.isoformat(),
        "effective_to": policy.effective_to.isoformat() if policy.effective_to else None,
        "sha256": policy.sha256,
        "path": policy.path,
        "problems": len(policy.problems),
        "outcomes": len(policy.outcomes),
    }


def list_policies(root: str | Path = "policies") -> list[dict[str, Any]]:
    return [summary(p) for p in sorted(load_policies(root), key=lambda p: p.id)]


def policy_dict(policy: Policy) -> dict[str, Any]:
    """Everything a policy says, in file order, with its source and every section citation."""
    e, c = policy.eligibility, policy.claim
    route = None
    if c.employment_route is not None:
        route = {"section": c.employment_route.section,
                 "measure": measure_dict(c.employment_route.measure),
                 "note": c.employment_route.note}
    return summary(policy) | {
        "note": policy.note,
        "source": {"document": policy.source.document, "title": policy.source.title,
                   "authority": policy.source.authority, "date": policy.source.date},
        "eligibility": {"section": e.section, "min_problems": e.min_problems,
                        "stages": list(e.stages),
                        "problems": list(e.problems) if e.problems is not None else None,
                        "note": e.note},
        "problems": [{"id": p.id, "title": p.title, "section": p.section,
                      "met_when": p.met_when, "note": p.note,
                      "indicators": [{"id": i.id, "title": i.title, "section": i.section,
                                      "note": i.note} for i in p.indicators]}
                     for p in policy.problems],
        "outcomes": [{"id": o.id, "problem": o.problem, "title": o.title, "section": o.section,
                      "answers": list(o.answers) if o.answers is not None else None,
                      "measure": measure_dict(o.measure), "note": o.note}
                     for o in policy.outcomes],
        "claim": {"section": c.section, "must_meet_stages": list(c.must_meet_stages),
                  "judgement_required": c.judgement_required,
                  "judgement_flags": list(c.judgement_flags), "essentials": list(c.essentials),
                  "essential_attestations": list(c.essential_attestations),
                  "double_funding_exclusion": list(c.double_funding_exclusion),
                  "progress_to_work_outcomes": list(c.progress_to_work_outcomes),
                  "employment_route": route, "note": c.note},
        "payments": [{"item": p.item, "amount": str(p.amount), "section": p.section,
                      "from": _plain(p.start), "to": _plain(p.end), "note": p.note}
                     for p in policy.payments],
    }


def show_policy(policy_id: str, root: str | Path = "policies") -> dict[str, Any]:
    return policy_dict(find_policy(policy_id, root))


def check(root_or_paths: str | Path | Iterable[str | Path] = "policies") -> dict[str, Any]:
    """``policy check``: every file, whether it is valid, and each error's file, key and reason."""
    result = check_policies(root_or_paths)
    return {
        "ok": result.ok,
        "files": list(result.files),
        "policies": [summary(p) for p in result.policies],
        "errors": [{"file": e.file, "key": e.key, "reason": e.reason} for e in result.errors],
    }
