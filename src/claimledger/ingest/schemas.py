"""The data-match file contract: one schema per ingest kind, exactly the DESIGN headers.

A schema turns one CSV row (a list of strings) into a dict of JSON-native values (ISO date
strings, ints, bools, None) or names the first bad cell. It knows nothing about the ledger;
references (family_ref, member_ref) are resolved by the importer. Column order in a schema
is the file's header order.

Cell rules: surrounding white space is ignored; an empty cell is absent (None) and allowed
only in optional columns; dates are ISO ``YYYY-MM-DD``; counts are non-negative integers;
flags are ``yes`` / ``no``; enumerations list their allowed values when a cell misses.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache
from typing import Any

from ..domain.base import BASE_FIELDS
from ..domain.family import EVENT_FOR_KIND
from ..policy.evidence import (
    CARE_STATUSES,
    EMPLOYMENT_KINDS,
    INCIDENT_KINDS,
    PROBLEMS,
    ROLES,
    SETTINGS,
    STAGES,
)

#: Provenance fields every ingested event carries besides the row's own values.
PROVENANCE = ("file_sha256", "row", "row_key")
#: Judgements may cover one headline problem or the whole family.
JUDGEMENT_PROBLEMS = (*PROBLEMS, "all")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INT = re.compile(r"[+-]?\d+")


class CellError(ValueError):
    """A bad cell: the reason, without file or line (the importer adds them)."""


class BadCell(Exception):
    """(column, reason) of the first bad cell of a row."""

    def __init__(self, column: str, reason: str):
        super().__init__(column, reason)
        self.column, self.reason = column, reason


Parser = Callable[[str], Any]


def text(cell: str) -> str:
    return cell


@lru_cache(maxsize=8192)
def iso_date(cell: str) -> str:
    """Only ``YYYY-MM-DD``: other spellings Python would accept are ambiguous in a data match.

    Cached: a data match repeats the same few term and review dates on thousands of rows.
    """
    if _DATE.fullmatch(cell):
        try:
            date.fromisoformat(cell)
            return cell
        except ValueError:
            pass
    raise CellError(f"bad date {cell!r}: expected an ISO date YYYY-MM-DD")


#: The most digits a number cell may have: far above any count of sessions, hours or
#: scores, far below what the ledger's canonical JSON holds (64-bit integers).
MAX_DIGITS = 15


def integer(cell: str) -> int:
    if cell.isdigit() and cell.isascii() and len(cell) <= MAX_DIGITS:  # the common case
        return int(cell)
    if not _INT.fullmatch(cell):
        raise CellError(f"not an integer: {cell!r}")
    if len(cell.lstrip("+-")) > MAX_DIGITS:
        raise CellError(f"{len(cell.lstrip('+-'))}-digit number: expected at most "
                        f"{MAX_DIGITS} digits")
    return int(cell)


def count(cell: str) -> int:
    if cell.isdigit() and cell.isascii() and len(cell) <= MAX_DIGITS:
        return int(cell)
    n = integer(cell)
    if n < 0:
        raise CellError(f"negative count {n}: expected 0 or more")
    return n


def flag(cell: str) -> bool:
    low = cell.lower()
    if low == "yes":
        return True
    if low == "no":
        return False
    raise CellError(f"bad yes/no flag {cell!r}: expected yes or no")


def one_of(name: str, allowed: tuple[str, ...]) -> Parser:
    choices = frozenset(allowed)
    listing = ", ".join(allowed)

    def parse(cell: str) -> str:
        if cell not in choices:
            raise CellError(f"unknown {name} {cell!r}: expected one of {listing}")
        return cell

    return parse


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    parse: Parser
    required: bool = True


def req(name: str, parse: Parser = text) -> Column:
    return Column(name, parse, True)


def opt(name: str, parse: Parser = text) -> Column:
    return Column(name, parse, False)


#: A check across columns of one parsed row: None, or (column, reason).
RowCheck = Callable[[dict[str, Any]], "tuple[str, str] | None"]


def not_before(end: str, start: str) -> RowCheck:
    def check(row: dict[str, Any]) -> tuple[str, str] | None:
        if row[end] is not None and row[start] is not None and row[end] < row[start]:
            return end, f"{end} {row[end]} is before {start} {row[start]}"
        return None

    return check


def not_more_than(part: str, whole: str, what: str) -> RowCheck:
    def check(row: dict[str, Any]) -> tuple[str, str] | None:
        if row[part] is not None and row[whole] is not None and row[part] > row[whole]:
            return part, (f"{what}: {part} {row[part]} is more than {whole} {row[whole]}")
        return None

    return check


@dataclass(frozen=True)
class Schema:
    """One ingest kind: its header, cell parsers, row checks, event and natural key."""

    kind: str
    columns: tuple[Column, ...]
    #: Columns that identify "the same record" when a later file re-supplies it; None when
    #: several records with identical keys are legitimate (incidents on one day).
    natural_key: tuple[str, ...] | None
    checks: tuple[RowCheck, ...] = ()

    @cached_property
    def header(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @cached_property
    def event(self) -> type:
        return EVENT_FOR_KIND[self.kind]

    @cached_property
    def ref(self) -> str:
        """The column that names the family's stream: family_ref, else member_ref."""
        return "family_ref" if "family_ref" in self.header else "member_ref"

    @cached_property
    def payload_columns(self) -> tuple[str, ...]:
        """Columns stored in the event: family_ref is the stream itself except for families."""
        if self.kind == "families":
            return self.header
        return tuple(n for n in self.header if n != "family_ref")

    @cached_property
    def _plan(self) -> tuple[tuple[str, Parser | None, bool], ...]:
        return tuple((c.name, None if c.parse is text else c.parse, c.required)
                     for c in self.columns)

    def parse(self, cells: list[str]) -> dict[str, Any]:
        """The row's values, or BadCell naming the first bad column (cells: one per column).

        Runs :attr:`compiled`, this schema's loop written out as straight-line code."""
        return self.compiled(cells)

    @cached_property
    def compiled(self) -> Callable[[list[str]], dict[str, Any]]:
        """:meth:`reference_parse` unrolled for this schema's columns, as ``dataclasses``
        writes ``__init__``: the same checks in the same order, without a loop, a tuple and a
        call per cell (counts and flags are read inline in their common spellings, anything
        else goes to the column's parser, which raises the same CellError). A data match
        has a hundred thousand rows; tests/test_ingest.py checks the two agree."""
        env: dict[str, Any] = {"BadCell": BadCell, "CellError": CellError,
                               "CHECKS": self.checks}
        lines = ["def parse(cells):",
                 f"    {', '.join(f'c{i}' for i in range(len(self.columns)))}, = cells"]
        for i, (name, parse, required) in enumerate(self._plan):
            c = f"c{i}"
            env[f"P{i}"] = parse
            lines.append(f"    {c} = {c}.strip()")
            lines.append(f"    if not {c}:")
            if required:
                lines.append(f"        raise BadCell({name!r}, "
                             f"{f'missing value: {name} is required'!r})")
            else:
                lines.append(f"        {c} = None")
            if parse is None:
                continue
            lines.append("    else:")
            if parse is count:  # its own fast path, inline
                lines.append(f"        if {c}.isdigit() and {c}.isascii() and len({c}) <= "
                             f"{MAX_DIGITS}:")
                lines.append(f"            {c} = int({c})")
                lines.append("        else:")
                indent = "            "
            elif parse is flag:
                lines.append(f"        if {c} == 'yes':")
                lines.append(f"            {c} = True")
                lines.append(f"        elif {c} == 'no':")
                lines.append(f"            {c} = False")
                lines.append("        else:")
                indent = "            "
            else:
                indent = "        "
            lines.append(f"{indent}try:")
            lines.append(f"{indent}    {c} = P{i}({c})")
            lines.append(f"{indent}except CellError as e:")
            lines.append(f"{indent}    raise BadCell({name!r}, str(e)) from None")
        items = ", ".join(f"{name!r}: c{i}" for i, (name, _, _) in enumerate(self._plan))
        lines.append(f"    row = {{{items}}}")
        if self.checks:
            lines.append("    for check in CHECKS:")
            lines.append("        bad = check(row)")
            lines.append("        if bad is not None:")
            lines.append("            raise BadCell(*bad)")
        lines.append("    return row")
        exec("\n".join(lines), env)  # our own code, written from our own schema
        fn: Callable[[list[str]], dict[str, Any]] = env["parse"]
        return fn

    def reference_parse(self, cells: list[str]) -> dict[str, Any]:
        """The row's values, or BadCell naming the first bad column: the plain loop that
        :attr:`compiled` unrolls."""
        row: dict[str, Any] = {}
        for (name, parse, required), raw in zip(self._plan, cells):  # noqa: B905 - width checked
            cell = raw.strip()
            if not cell:
                if required:
                    raise BadCell(name, f"missing value: {name} is required")
                row[name] = None
            elif parse is None:
                row[name] = cell
            else:
                try:
                    row[name] = parse(cell)
                except CellError as e:
                    raise BadCell(name, str(e)) from None
        for check in self.checks:
            bad = check(row)
            if bad is not None:
                raise BadCell(*bad)
        return row


_problem = one_of("problem", PROBLEMS)

SCHEMAS: dict[str, Schema] = {
    s.kind: s
    for s in (
        Schema(
            "families",
            (req("family_ref"), req("authority"), req("policy_id"),
             req("identified_on", iso_date)),
            natural_key=("family_ref",),
        ),
        Schema(
            "members",
            (req("family_ref"), req("member_ref"), req("role", one_of("role", ROLES)),
             req("birth_date", iso_date)),
            natural_key=("member_ref",),
        ),
        Schema(
            "indicators",
            (req("family_ref"), opt("member_ref"), req("problem", _problem), req("indicator"),
             req("observed_on", iso_date), req("stage", one_of("stage", STAGES)),
             opt("source")),
            natural_key=None,
        ),
        Schema(
            "attachments",
            (req("family_ref"), req("attached_on", iso_date), opt("lead_professional"),
             opt("assessment_on", iso_date), opt("plan_on", iso_date)),
            natural_key=("family_ref",),
        ),
        Schema(
            "attendance",
            (req("member_ref"), req("term_start", iso_date), req("term_end", iso_date),
             req("sessions_possible", count), req("sessions_absent", count),
             opt("unauthorised_absent", count), opt("fixed_term_exclusions", count),
             opt("permanent_exclusion", flag), req("setting", one_of("setting", SETTINGS)),
             opt("source")),
            natural_key=("member_ref", "term_start", "term_end"),
            checks=(
                not_before("term_end", "term_start"),
                not_more_than("sessions_absent", "sessions_possible",
                              "absent more sessions than possible"),
                not_more_than("unauthorised_absent", "sessions_absent",
                              "more unauthorised absences than absences"),
            ),
        ),
        Schema(
            "incidents",
            (req("member_ref"), req("occurred_on", iso_date),
             req("kind", one_of("kind", INCIDENT_KINDS)), opt("serious", flag), opt("source")),
            natural_key=None,
        ),
        Schema(
            "employment",
            (req("member_ref"), req("kind", one_of("kind", EMPLOYMENT_KINDS)), opt("benefit"),
             req("start_on", iso_date), opt("end_on", iso_date), opt("hours_per_week", count),
             opt("source")),
            natural_key=("member_ref", "kind", "start_on"),
            checks=(not_before("end_on", "start_on"),),
        ),
        Schema(
            "care_status",
            (req("member_ref"), req("status", one_of("status", CARE_STATUSES)),
             req("start_on", iso_date), opt("end_on", iso_date), opt("source")),
            natural_key=("member_ref", "status", "start_on"),
            checks=(not_before("end_on", "start_on"),),
        ),
        Schema(
            "scores",
            (req("member_ref"), req("instrument"), req("assessed_on", iso_date),
             req("score", integer), opt("assessor")),
            natural_key=("member_ref", "instrument", "assessed_on"),
        ),
        Schema(
            "judgements",
            (req("family_ref"), req("judged_on", iso_date), req("practitioner"),
             req("problem", one_of("problem", JUDGEMENT_PROBLEMS)), req("progress", flag),
             req("sustained", flag), req("intensity_reduced", flag), opt("note")),
            natural_key=("family_ref", "judged_on", "problem"),
        ),
        Schema(
            "attestations",
            (req("family_ref"), opt("member_ref"), req("outcome"),
             req("attested_on", iso_date), req("practitioner"), opt("evidence")),
            natural_key=None,
        ),
    )
}

KINDS = tuple(SCHEMAS)


def event_fields(event_class: type) -> tuple[str, ...]:
    """The payload fields an event class declares (events are dataclasses)."""
    return tuple(f.name for f in dataclasses.fields(event_class) if f.name not in BASE_FIELDS)
