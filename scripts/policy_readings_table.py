"""Part 2 of docs/policy-readings.md: one row per rule of every policy, from the files as they are.

Run ``.venv/bin/python scripts/policy_readings_table.py`` to print Part 2, or ``--write`` to
replace it in the document (Part 1, written by hand, is kept). Each row takes the document's
phrase from the rule's title, its section, the reading from its ``note`` (``policy show`` prints
the whole note) and the story cases under ``tests/cases/`` that expect it met and not met
(:func:`claimledger.policy.cases.coverage`), so the table cannot claim a case that does not
test the rule.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from claimledger.policy.cases import (
    CLAIM,
    ELIGIBILITY,
    EMPLOYMENT_ROUTE,
    PolicyCase,
    coverage,
    load_case,
)
from claimledger.policy.library import load_policies
from claimledger.policy.model import Policy

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "policy-readings.md"
PART2 = "## Part 2: every rule, by policy"
SHOWN = 3  # cases named per side; the rest are counted


def short(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word before ``limit`` characters."""
    one = " ".join(text.split()).replace("|", "/")
    if len(one) <= limit:
        return one
    return one[:limit].rsplit(" ", 1)[0] + " ..."


def reading(note: str | None, limit: int = 320) -> str:
    """The note's first sentences, up to about ``limit`` characters."""
    if not note:
        return "as written (no reading choice noted)"
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", " ".join(note.split()))
                 if not s.startswith("Data source")]  # where the data comes from, not a reading
    if not sentences:
        return "as written (the note names only the data source)"
    out = ""
    for s in sentences:
        if out and len(out) + len(s) > limit:
            return out.replace("|", "/") + " ..."
        out = f"{out} {s}".strip()
    return out.replace("|", "/")


def names(paths: list[str]) -> str:
    stems = sorted({f"{Path(p).parent.name}/{Path(p).stem}" for p in paths})
    shown = ", ".join(f"`{s}`" for s in stems[:SHOWN])
    more = len(stems) - SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def cases_cell(met: list[str], not_met: list[str]) -> str:
    return f"met: {names(met)}; not met: {names(not_met)}"


def rows(policy: Policy, cases: list[PolicyCase]) -> list[str]:
    cov = coverage(policy, cases)
    e = policy.eligibility
    out = [f"| at least {e.min_problems} headline problems | {short(e.section, 90)} | "
           f"`{ELIGIBILITY}` | {reading(e.note)} stages: {', '.join(e.stages)} | "
           f"{cases_cell(*cov[ELIGIBILITY])} |"]
    for o in policy.outcomes:
        answers = "all" if o.answers is None else ", ".join(o.answers)
        out.append(f"| {short(o.title, 110)} | {short(o.section, 90)} | `{o.id}` (answers "
                   f"{answers}) | {reading(o.note)} | {cases_cell(*cov[o.id])} |")
    claim = policy.claim
    if claim is not None:
        out.append(f"| claim conditions | {short(claim.section, 90)} | `{CLAIM}` | "
                   f"{reading(claim.note)} | {cases_cell(*cov[CLAIM])} |")
        route = claim.employment_route
        if route is not None:
            out.append(f"| employment route | {short(route.section, 90)} | "
                       f"`{EMPLOYMENT_ROUTE}` | {reading(route.note)} | "
                       f"{cases_cell(*cov[EMPLOYMENT_ROUTE])} |")
    for p in policy.payments:
        span = f"{p.start or '...'}..{p.end or '...'}"
        where = ("see `tests/test_policy_readings.py`" if p.basis != "claim_date"
                 else "`tests/test_decide.py` (engine rates only)")
        out.append(f"| {p.item} £{p.amount} ({span}) | {short(p.section, 90)} | "
                   f"`[[payments]]` | basis {p.basis}. {reading(p.note)} | {where} |")
    return out


def part2() -> str:
    cases = [load_case(f) for f in sorted((ROOT / "tests" / "cases").glob("*/*.toml"))]
    lines = [PART2, ""]
    for policy in load_policies(ROOT / "policies"):
        lines += [f"## {policy.title}", "",
                  f"`policies/{policy.id}.toml` (source `{policy.source.document}`), sha256 "
                  f"`{policy.sha256[:12]}`", "",
                  "| document phrase | section | id | reading taken | cases |",
                  "|---|---|---|---|---|", *rows(policy, cases), ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    table = part2()
    if "--write" not in argv:
        print(table)
        return 0
    text = DOC.read_text(encoding="utf-8")
    DOC.write_text(text[:text.index(PART2)] + table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
