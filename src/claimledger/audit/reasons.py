"""Reasons in plain words: a decision's structure turned into sentences a person reads.

A decision records each outcome's reason as one machine-made string (``any of (1 of 3 met):
[not met] status_step_down: …``), exact but hard to read on paper. Here the outcome's measure
tree is walked again with the same policy, evidence and review date, so each test becomes one
finding with its own verdict and numbers, and combinations say how many of their tests were
needed. Strings without a structure behind them (the decision's top-level reasons, what
changed since submission) get the same vocabulary by :func:`plain`. Pure: no ledger, no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from ..policy.evidence import FamilyEvidence
from ..policy.measures import KINDS
from ..policy.model import AllOf, AtLeast, Leaf, Measure, Policy
from ..policy.parts import num

#: A measure kind as a person names the test it makes.
KIND_TITLE = {
    "attendance": "School attendance",
    "exclusions": "Exclusions",
    "incident_reduction": "Fewer incidents",
    "no_incidents": "No incidents",
    "continuous_employment": "Continuous employment",
    "progress_to_work": "Progress towards work",
    "score_change": "Assessment score",
    "status_step_down": "Care status stepped down",
    "attestation": "Practitioner's attestation",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One test's verdict in words, with the tests it combines."""

    met: bool
    title: str
    text: str
    children: tuple[Finding, ...] = ()


def counted(n: int, word: str) -> str:
    """``1 outcome``, ``3 outcomes``."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def measure_findings(measure: Measure, evidence: FamilyEvidence, as_of: date) -> Finding:
    """The measure tree evaluated node by node (each node exactly as the decision did)."""
    if isinstance(measure, Leaf):
        kind = KINDS[measure.kind]
        result = kind.func(kind.with_defaults(measure.resolved(as_of)), evidence, as_of)
        text = plain(result.reason)
        dated = [(d.entry_at(as_of), name.removesuffix("_pct").replace("_", " "),
                  "%" if name.endswith("_pct") else "") for name, d in measure.dated().items()]
        if dated:
            text += " (" + "; ".join(f"policy value in force from {v.start}: {words} "
                                     f"{num(v.value)}{unit}" for v, words, unit in dated) + ")"
        return Finding(result.met, KIND_TITLE.get(measure.kind, measure.kind), text)
    children = tuple(measure_findings(m, evidence, as_of) for m in measure.items)
    met_n, total = sum(c.met for c in children), len(children)
    if isinstance(measure, AllOf):
        need, met = f"All {total} tests must pass", met_n == total
    elif isinstance(measure, AtLeast):
        need, met = f"At least {measure.n} of {total} tests must pass", met_n >= measure.n
    else:
        need, met = f"Any one of {total} tests is enough", met_n > 0
    passed = "none passes" if not met_n else f"{met_n} pass" + ("es" if met_n == 1 else "")
    return Finding(met, need, passed, children)


def outcome_findings(policy: Policy, outcome: dict[str, Any], evidence: FamilyEvidence,
                     as_of: date) -> Finding:
    """An outcome of the decision in words. The claim rule's double-funding exclusion (which
    overrides the measure) comes first when it applied."""
    model = policy.outcome(outcome["id"])
    if model is None:  # the registered policy always defines its outcomes; say so if not
        return Finding(bool(outcome.get("met")), "Outcome", plain(outcome.get("reason", "")))
    found = measure_findings(model.measure, evidence, as_of)
    reason = str(outcome.get("reason", ""))
    if reason.startswith("double funding:"):
        why = reason.split(", so outcome", 1)[0]
        return Finding(False, "Double funding", plain(why) + ", so this outcome cannot count",
                       (found,))
    return found


def problem_sentence(policy: Policy, problem: dict[str, Any]) -> str:
    """How the problem is judged and what came of it, from the policy's rule and the
    decision's outcomes."""
    model = policy.problem(problem["problem"])
    outcomes = problem.get("outcomes", [])
    met = [o["id"] for o in outcomes if o.get("met")]
    unmet = [o["id"] for o in outcomes if not o.get("met")]
    rule = model.met_when if model is not None else ""
    if not outcomes:
        return sentence(plain(problem.get("reason", "")))
    if rule == "any_outcome":
        head = f"Any one of its {counted(len(outcomes), 'outcome')} is enough"
        tail = f"met by {_list(met)}" if met else "none is met"
    elif rule == "all_outcomes":
        head = f"All {counted(len(outcomes), 'outcome')} must be met"
        tail = "every one is met" if not unmet else f"{_list(unmet)} not met"
    else:
        head = "Each indicator recorded for the family must be answered by a met outcome"
        tail = plain(problem.get("reason", ""))
    return sentence(f"{head}; {tail}")


def _list(ids: list[str]) -> str:
    if len(ids) <= 1:
        return "".join(ids)
    return ", ".join(ids[:-1]) + " and " + ids[-1]


_COMBINATION = re.compile(r"\b(any of|all of|at least (\d+) of) \((\d+) of (\d+) met\): ")
_DATES = re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2}|open|ongoing)")
_KIND = re.compile(r"\b(" + "|".join(KINDS) + r"): ")
_CODE = re.compile(r"(?<=[a-z])_(?=[a-z])")


def _combination(m: re.Match[str]) -> str:
    total, met = m.group(4), m.group(3)
    if m.group(1) == "any of":
        head = f"any one of {total} tests is enough"
    elif m.group(1) == "all of":
        head = f"all {total} tests must pass"
    else:
        head = f"at least {m.group(2)} of {total} tests must pass"
    return f"{head} ({met} pass): "


def plain(text: str) -> str:
    """A machine-made reason in the report's words, every number kept: measure kinds by
    name, ``[met]``/``[not met]`` as marks, ``a..b`` as "a to b", thresholds as needs."""
    t = str(text)
    t = re.sub(r"^(not met|met): ", "", t)
    t = _COMBINATION.sub(_combination, t)
    t = _KIND.sub(lambda m: KIND_TITLE[m.group(1)].lower() + ": ", t)
    t = re.sub(r": (not met|met): ", ": ", t)
    t = t.replace("[not met] ", "✗ ").replace("[met] ", "✓ ")
    t = _DATES.sub(r"\1 to \2", t)
    t = t.replace(" -> ", " → ")
    for op, words in (("<=", "at most"), (">=", "at least"), ("<", "under"), (">", "over")):
        t = t.replace(f"threshold {op} ", f"needs {words} ")
    t = re.sub(r"\b1 ([\w-]+)\(s\)", r"1 \1", t).replace("(s)", "s")
    t = _CODE.sub(" ", t)
    return t


def sentence(text: str) -> str:
    """Capitalised, with a full stop."""
    t = text.strip()
    if not t:
        return t
    t = t[0].upper() + t[1:]
    return t if t.endswith((".", ")", "…")) else t + "."
