"""Reading and validating policy files: TOML bytes in, a :class:`~.model.Policy` out.

A policy is council rules written as data, so a mistake in one must be caught on load, not in
the middle of an audit. Validation checks every key against the format of
``docs/policy-format.md`` and names the file, the dotted key (``outcomes[3].measure.terms``,
indexes counting from 0) and the reason. :func:`check_policies` collects every problem in
every file without raising (for ``claimledger policy check``); the ``load_*`` functions raise
the first :class:`~claimledger.errors.PolicyError`.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import PolicyError
from .evidence import PROBLEMS, STAGES
from .measures import KINDS, PROGRESS_KINDS, Kind, Param
from .model import (
    AllOf,
    AnyOf,
    AtLeast,
    ClaimRule,
    Dated,
    DatedValue,
    Eligibility,
    EmploymentRoute,
    EmploymentRule,
    Indicator,
    Leaf,
    Measure,
    Number,
    Outcome,
    Payment,
    Policy,
    Problem,
    Source,
)

FORMAT = 1
MET_WHEN = ("any_outcome", "all_outcomes", "each_indicator_answered")
JUDGEMENT_FLAGS = ("progress", "sustained", "intensity_reduced")
ESSENTIALS = ("lead_professional", "assessment", "plan")
DATED_ESSENTIALS = ("attachment", "assessment", "plan")  # an attestation dated on or after one
PAYMENT_ITEMS = ("attachment", "results", "progress_to_work", "employment", "total")
PAYMENT_BASES = ("claim_date", "attachment_date")
DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")
MONEY = re.compile(r"^[0-9]+(\.[0-9]{1,2})?$")
MISSING = object()


class _Float:
    """A TOML float, kept as its text so validation can name it: decisions carry no floats."""

    def __init__(self, text: str):
        self.text = text


def _key(parent: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{parent}[{name}]"
    return f"{parent}.{name}" if parent else name


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


class _Checker:
    """Collects every problem in one file; each ``want_*`` returns None when the value is bad."""

    def __init__(self, file: str):
        self.file = file
        self.errors: list[PolicyError] = []

    def fail(self, key: str, reason: str) -> None:
        self.errors.append(PolicyError(self.file, key, reason))

    def _wrong(self, key: str, value: Any, expected: str) -> None:
        if not isinstance(value, _Float):  # floats are reported once, by find_floats
            self.fail(key, f"expected {expected}, found {_type_name(value)}")

    def find_floats(self, value: Any, key: str) -> None:
        if isinstance(value, _Float):
            self.fail(key, f"TOML float {value.text} is not allowed: write an integer or a "
                           f'decimal string such as "{value.text}"')
        elif isinstance(value, dict):
            for k, v in value.items():
                self.find_floats(v, _key(key, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.find_floats(v, _key(key, i))

    def table(self, value: Any, key: str, allowed: Iterable[str],
              required: Iterable[str] = ()) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self._wrong(key, value, "a table")
            return None
        allowed = tuple(allowed)
        for name in value:
            if name not in allowed:
                self.fail(_key(key, name), f"unknown key (allowed here: {', '.join(allowed)})")
        for name in required:
            if name not in value:
                self.fail(_key(key, name), "missing required key")
        return value

    def tables(self, value: Any, key: str, *, non_empty: bool = False) -> list[Any]:
        if value is MISSING:
            return []
        if not isinstance(value, list):
            self._wrong(key, value, "a list of tables")
            return []
        if non_empty and not value:
            self.fail(key, "must not be empty")
        return value

    def string(self, t: dict[str, Any], name: str, key: str, *,
               required: bool = True) -> str | None:
        value = t.get(name, MISSING)
        if value is MISSING:
            return None  # a missing required key is reported by table()
        if not isinstance(value, str):
            self._wrong(_key(key, name), value, "a string")
            return None
        if required and not value.strip():
            self.fail(_key(key, name), "must not be empty")
            return None
        return value

    def note(self, t: dict[str, Any], key: str) -> str | None:
        return self.string(t, "note", key, required=False)

    def day(self, t: dict[str, Any], name: str, key: str) -> date | None:
        value = t.get(name, MISSING)
        if value is MISSING:
            return None
        if isinstance(value, datetime) or not isinstance(value, date):
            self._wrong(_key(key, name), value, "a date such as 2015-04-01 (TOML local date)")
            return None
        return value

    def boolean(self, t: dict[str, Any], name: str, key: str, default: bool) -> bool:
        value = t.get(name, MISSING)
        if value is MISSING:
            return default
        if not isinstance(value, bool):
            self._wrong(_key(key, name), value, "true or false")
            return default
        return value

    def integer(self, value: Any, key: str, minimum: int = 0) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self._wrong(key, value, "an integer")
            return None
        if value < minimum:
            self.fail(key, f"must be at least {minimum}, found {value}")
            return None
        return value

    def number(self, value: Any, key: str) -> Number | None:
        if isinstance(value, str):
            if not DECIMAL.match(value):
                self.fail(key, f'expected an integer or a decimal string such as "33.3", '
                               f"found {value!r}")
                return None
            return Decimal(value)
        return self.integer(value, key)

    def choice(self, value: Any, key: str, choices: Sequence[str]) -> str | None:
        if not isinstance(value, str):
            self._wrong(key, value, "a string")
            return None
        if value not in choices:
            self.fail(key, f"'{value}' is not one of: {', '.join(choices)}")
            return None
        return value

    def choices(self, value: Any, key: str, choices: Sequence[str] = (), *,
                non_empty: bool = True) -> tuple[str, ...] | None:
        if not isinstance(value, list):
            self._wrong(key, value, "a list of strings")
            return None
        if non_empty and not value:
            self.fail(key, "must not be empty")
            return None
        out: list[str] = []
        for i, v in enumerate(value):
            if not isinstance(v, str) or not v.strip():
                self._wrong(_key(key, i), v, "a non-empty string")
                return None
            if choices and v not in choices:
                self.fail(_key(key, i), f"'{v}' is not one of: {', '.join(choices)}")
                return None
            if v in out:
                self.fail(_key(key, i), f"'{v}' is listed twice")
                return None
            out.append(v)
        return tuple(out)

    # -- measures -----------------------------------------------------------------------------

    def dated(self, value: list[Any], key: str, param: Param) -> Dated | None:
        if not value:
            self.fail(key, "a dated parameter needs at least one { from, value } entry")
            return None
        entries: list[DatedValue] = []
        for i, item in enumerate(value):
            k = _key(key, i)
            t = self.table(item, k, ("from", "value", "section", "note"), ("from", "value"))
            if t is None:
                return None
            start = self.day(t, "from", k)
            raw = t.get("value", MISSING)
            v = None if raw is MISSING else self.scalar(raw, _key(k, "value"), param)
            section = self.string(t, "section", k)
            if start is None or v is None:
                return None
            if entries and start <= entries[-1].start:
                self.fail(_key(k, "from"), f"dates must increase: {start} is not after "
                                           f"{entries[-1].start}")
                return None
            entries.append(DatedValue(start, v, section, self.note(t, k)))
        return Dated(tuple(entries), f"{self.file}: {key}")

    def scalar(self, value: Any, key: str, param: Param) -> Number | None:
        if param.type == "int":
            return self.integer(value, key, param.minimum)
        return self.number(value, key)

    def rules(self, value: Any, key: str) -> tuple[EmploymentRule, ...] | None:
        items = self.tables(value, key, non_empty=True)
        rules: list[EmploymentRule] = []
        ok = True
        for i, item in enumerate(items):
            k = _key(key, i)
            t = self.table(item, k, ("benefit", "weeks", "within_weeks"), ("benefit", "weeks"))
            if t is None:
                ok = False
                continue
            benefit = self.string(t, "benefit", k)
            weeks = self.param_value(t.get("weeks", MISSING), _key(k, "weeks"),
                                     Param("weeks", "int", minimum=1))
            within = None
            if "within_weeks" in t:
                within = self.param_value(t["within_weeks"], _key(k, "within_weeks"),
                                          Param("within_weeks", "int", minimum=1))
                if within is None:
                    ok = False
            if benefit is None or weeks is None:
                ok = False
                continue
            if any(r.benefit == benefit for r in rules):
                self.fail(_key(k, "benefit"), f"a rule for '{benefit}' is already given")
                ok = False
            if isinstance(weeks, int) and isinstance(within, int) and within < weeks:
                self.fail(_key(k, "within_weeks"), f"{within} weeks cannot hold {weeks} weeks "
                                                   "of work")
                ok = False
            rules.append(EmploymentRule(benefit, weeks, within))
        return tuple(rules) if ok and rules else None

    def param_value(self, value: Any, key: str, param: Param) -> Any:
        if value is MISSING:
            return None
        if param.type in ("int", "number"):
            if isinstance(value, list):
                return self.dated(value, key, param)
            return self.scalar(value, key, param)
        if param.type == "bool":
            if not isinstance(value, bool):
                self._wrong(key, value, "true or false")
                return None
            return value
        if param.type == "str":
            if not isinstance(value, str) or not value.strip():
                self._wrong(key, value, "a non-empty string")
                return None
            return value
        if param.type == "choice":
            return self.choice(value, key, param.choices)
        if param.type == "choices":
            return self.choices(value, key, param.choices)
        if param.type == "rules":
            return self.rules(value, key)
        raise AssertionError(f"unknown parameter type {param.type}")

    def leaf(self, t: dict[str, Any], key: str, kind: Kind) -> Leaf | None:
        ok = True
        params: list[tuple[str, Any]] = []
        for name, value in t.items():
            if name in ("kind", "section", "note"):
                continue
            param = kind.param(name)
            if param is None:
                allowed = ", ".join(p.name for p in kind.params)
                self.fail(_key(key, name), f"unknown parameter for kind '{kind.name}' "
                                           f"(allowed: {allowed})")
                ok = False
                continue
            parsed = self.param_value(value, _key(key, name), param)
            if parsed is None:
                ok = False
                continue
            params.append((name, parsed))
        for param in kind.params:
            if param.required and param.name not in t:
                self.fail(_key(key, param.name), f"missing required parameter of kind "
                                                 f"'{kind.name}'")
                ok = False
        for group in kind.one_of:
            given = [g for g in group if g in t]
            if len(given) != 1:
                self.fail(key, f"kind '{kind.name}' needs exactly one of {', '.join(group)}"
                               f"{' (found ' + ', '.join(given) + ')' if given else ''}")
                ok = False
        if not ok:
            return None
        return Leaf(kind.name, tuple(params), self.string(t, "section", key), self.note(t, key),
                    key)

    def parts(self, items: Any, key: str) -> list[Measure] | None:
        """The measures of a combination's list, or None when any is bad."""
        if not isinstance(items, list) or not items:
            self.fail(key, "expected a non-empty list of measures")
            return None
        parts = [self.measure(m, _key(key, i)) for i, m in enumerate(items)]
        if any(p is None for p in parts):
            return None
        return [p for p in parts if p is not None]

    def at_least(self, value: dict[str, Any], key: str) -> Measure | None:
        """``{ at_least = 3, of = [...] }``: met when at least that many of the list are."""
        t = self.table(value, key, ("at_least", "of", "section", "note"), ("of",))
        if t is None or "of" not in t:
            return None
        n = self.integer(t["at_least"], _key(key, "at_least"), 1)
        parts = self.parts(t["of"], _key(key, "of"))
        if n is None or parts is None:
            return None
        if n > len(parts):
            self.fail(_key(key, "at_least"), f"at least {n} of {len(parts)} measures can never "
                                             "be met")
            return None
        return AtLeast(n, tuple(parts), self.string(t, "section", key), self.note(t, key), key)

    def measure(self, value: Any, key: str) -> Measure | None:
        if not isinstance(value, dict):
            self._wrong(key, value, "a measure table (kind = ..., all_of = [...] or any_of = "
                                    "[...])")
            return None
        heads = [h for h in ("kind", "all_of", "any_of", "at_least") if h in value]
        if len(heads) != 1:
            self.fail(key, "a measure needs exactly one of kind, all_of, any_of, at_least"
                           + (f" (found {', '.join(heads)})" if heads else ""))
            return None
        head = heads[0]
        if head == "kind":
            name = value["kind"]
            if not isinstance(name, str) or name not in KINDS:
                self.fail(_key(key, "kind"), f"unknown measure kind {name!r} (known: "
                                             f"{', '.join(KINDS)})")
                return None
            return self.leaf(value, key, KINDS[name])
        if head == "at_least":
            return self.at_least(value, key)
        t = self.table(value, key, (head, "section", "note"))
        if t is None:
            return None
        parts = self.parts(t[head], _key(key, head))
        if parts is None:
            return None
        cls = AllOf if head == "all_of" else AnyOf
        return cls(tuple(p for p in parts if p is not None), self.string(t, "section", key),
                   self.note(t, key), key)


def expected_id(path: str) -> str | None:
    """The id a file's location gives it: ``a/b`` from ``.../a/b.toml``."""
    p = Path(path)
    if p.suffix != ".toml" or len(p.parts) < 2:
        return None
    return f"{p.parent.name}/{p.stem}"


#: The largest policy file read: the longest plan here is under 100 KB.
MAX_POLICY_BYTES = 2 * 1024 * 1024


def _parse(data: bytes, path: str) -> dict[str, Any]:
    """The TOML document, or one PolicyError: a policy file comes from outside (a bundle,
    an operator's edit), so size, nesting and number length are bounded before anything
    else reads it."""
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(path, "", f"{len(data)} bytes; a policy file is at most "
                                    f"{MAX_POLICY_BYTES}")
    try:
        return tomllib.loads(data.decode("utf-8"), parse_float=_Float)
    except UnicodeDecodeError as e:
        raise PolicyError(path, "", f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise PolicyError(path, "", f"not valid TOML: {e}") from None
    except RecursionError:
        raise PolicyError(path, "", "nested too deeply to be a policy") from None
    except ValueError as e:  # e.g. an integer of thousands of digits
        raise PolicyError(path, "", f"not a policy value: {e}") from None


def _validate(doc: dict[str, Any], data: bytes, path: str) -> tuple[Policy | None,
                                                                    list[PolicyError]]:
    c = _Checker(path)
    c.find_floats(doc, "")
    top = c.table(doc, "", ("format", "id", "title", "authority", "programme_phase",
                            "effective_from", "effective_to", "note", "source", "eligibility",
                            "problems", "outcomes", "claim", "payments"),
                  ("format", "id", "title", "authority", "programme_phase", "effective_from",
                   "source", "eligibility", "problems", "outcomes", "claim"))
    assert top is not None
    if "format" in top and top["format"] != FORMAT:
        c.fail("format", f"this claimledger reads policy format {FORMAT}, found "
                         f"{top['format']!r}")
    policy_id = c.string(top, "id", "")
    want = expected_id(path)
    if policy_id is not None:
        if want is None:
            c.fail("id", "a policy file must live at policies/<authority>/<plan>.toml")
        elif policy_id != want:
            c.fail("id", f"'{policy_id}' does not match the file's location, which gives "
                         f"'{want}'")
    title = c.string(top, "title", "")
    authority = c.string(top, "authority", "")
    phase = top.get("programme_phase", MISSING)
    if phase is not MISSING and (isinstance(phase, bool) or phase not in (1, 2)):
        c.fail("programme_phase", f"expected 1 or 2, found {phase!r}")
    start = c.day(top, "effective_from", "")
    end = c.day(top, "effective_to", "")
    if start and end and end < start:
        c.fail("effective_to", f"{end} is before effective_from {start}")

    source = None
    s = c.table(top["source"], "source", ("document", "title", "authority", "date"),
                ("document", "title", "authority", "date")) if "source" in top else None
    if s is not None:
        fields = [c.string(s, n, "source") for n in ("document", "title", "authority", "date")]
        if all(f is not None for f in fields):
            source = Source(*fields)  # type: ignore[arg-type]

    problems = _problems(c, top.get("problems", MISSING))
    written = top.get("problems")
    declared = {t.get("id") for t in written if isinstance(t, dict)} \
        if isinstance(written, list) else set()
    eligibility = _eligibility(c, top.get("eligibility", MISSING), problems)
    outcomes = _outcomes(c, top.get("outcomes", MISSING), problems, declared)
    claim = _claim(c, top.get("claim", MISSING), outcomes)
    payments = _payments(c, top.get("payments", MISSING))

    if c.errors:
        return None, c.errors
    policy = Policy(
        id=policy_id, title=title, authority=authority,  # type: ignore[arg-type]
        programme_phase=phase, effective_from=start, effective_to=end,  # type: ignore[arg-type]
        source=source, eligibility=eligibility, problems=problems,  # type: ignore[arg-type]
        outcomes=outcomes, claim=claim, payments=payments,  # type: ignore[arg-type]
        note=c.note(top, ""), path=path, content=data,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    return policy, []


def _problems(c: _Checker, value: Any) -> tuple[Problem, ...]:
    out: list[Problem] = []
    for i, item in enumerate(c.tables(value, "problems", non_empty=True)):
        k = _key("problems", i)
        t = c.table(item, k, ("id", "title", "section", "met_when", "note", "indicators"),
                    ("id", "title", "section", "met_when"))
        if t is None:
            continue
        pid = t.get("id")
        if "id" in t and c.choice(pid, _key(k, "id"), PROBLEMS) is not None and \
                any(p.id == pid for p in out):
            c.fail(_key(k, "id"), f"problem '{pid}' is defined twice")
        met_when = c.choice(t["met_when"], _key(k, "met_when"), MET_WHEN) \
            if "met_when" in t else None
        indicators: list[Indicator] = []
        for j, ind in enumerate(c.tables(t.get("indicators", MISSING), _key(k, "indicators"))):
            kk = _key(_key(k, "indicators"), j)
            it = c.table(ind, kk, ("id", "title", "section", "note"), ("id", "title", "section"))
            if it is None:
                continue
            iid = c.string(it, "id", kk)
            if iid is not None and any(x.id == iid for x in indicators):
                c.fail(_key(kk, "id"), f"indicator '{iid}' is defined twice in problem '{pid}'")
            ititle, isection = c.string(it, "title", kk), c.string(it, "section", kk)
            if iid is not None and ititle is not None and isection is not None:
                indicators.append(Indicator(iid, ititle, isection, c.note(it, kk)))
        ptitle, psection = c.string(t, "title", k), c.string(t, "section", k)
        if isinstance(pid, str) and met_when and ptitle is not None and psection is not None:
            out.append(Problem(pid, ptitle, psection, met_when, tuple(indicators), c.note(t, k)))
    return tuple(out)


def _eligibility(c: _Checker, value: Any, problems: tuple[Problem, ...]) -> Eligibility | None:
    if value is MISSING:
        return None
    k = "eligibility"
    t = c.table(value, k, ("section", "min_problems", "stages", "problems", "note"),
                ("section", "min_problems", "stages"))
    if t is None:
        return None
    section = c.string(t, "section", k)
    n = c.integer(t["min_problems"], _key(k, "min_problems"), 1) if "min_problems" in t else None
    stages = c.choices(t["stages"], _key(k, "stages"), STAGES) if "stages" in t else None
    counted = None
    if "problems" in t:
        counted = c.choices(t["problems"], _key(k, "problems"), PROBLEMS)
        for i, p in enumerate(counted or ()):
            if not any(x.id == p for x in problems):
                c.fail(_key(_key(k, "problems"), i), f"problem '{p}' is not defined in "
                                                     "[[problems]]")
    if section is None or n is None or stages is None:
        return None
    return Eligibility(section, n, stages, counted, c.note(t, k))


def _outcomes(c: _Checker, value: Any, problems: tuple[Problem, ...],
              declared: set[Any]) -> tuple[Outcome, ...]:
    """Outcomes; ``declared`` holds every problem id written, so an outcome of a problem whose
    own table is broken is not reported a second time."""
    out: list[Outcome] = []
    for i, item in enumerate(c.tables(value, "outcomes", non_empty=True)):
        k = _key("outcomes", i)
        t = c.table(item, k, ("id", "problem", "title", "section", "answers", "note", "measure"),
                    ("id", "problem", "title", "section", "measure"))
        if t is None:
            continue
        oid = c.string(t, "id", k)
        if oid is not None and any(o.id == oid for o in out):
            c.fail(_key(k, "id"), f"outcome '{oid}' is defined twice")
        problem = None
        if "problem" in t:
            pid = t["problem"]
            problem = next((p for p in problems if p.id == pid), None)
            if problem is None and pid not in declared:
                c.fail(_key(k, "problem"), f"{pid!r} is not a problem defined in [[problems]]")
        answers = None
        if "answers" in t:
            answers = c.choices(t["answers"], _key(k, "answers"))
            if answers is not None and problem is not None:
                for j, a in enumerate(answers):
                    if problem.indicator(a) is None:
                        known = ", ".join(x.id for x in problem.indicators) or "none"
                        c.fail(_key(_key(k, "answers"), j),
                               f"'{a}' is not an indicator of problem '{problem.id}' "
                               f"(its indicators: {known})")
        measure = c.measure(t["measure"], _key(k, "measure")) if "measure" in t else None
        title, section = c.string(t, "title", k), c.string(t, "section", k)
        if None not in (oid, problem, measure, title, section):
            out.append(Outcome(oid, problem.id, title, section, measure,  # type: ignore
                               answers, c.note(t, k)))
    return tuple(out)


def _claim(c: _Checker, value: Any, outcomes: tuple[Outcome, ...]) -> ClaimRule | None:
    if value is MISSING:
        return None
    k = "claim"
    t = c.table(value, k, ("section", "must_meet_stages", "judgement_required",
                           "judgement_flags", "essentials", "essential_attestations",
                           "double_funding_exclusion", "progress_to_work_outcomes",
                           "employment_route", "essential_attestations_after",
                           "one_results_claim", "note"),
                ("section", "must_meet_stages"))
    if t is None:
        return None
    section = c.string(t, "section", k)
    stages = c.choices(t["must_meet_stages"], _key(k, "must_meet_stages"), STAGES) \
        if "must_meet_stages" in t else None

    def listed(name: str, choices: Sequence[str], default: tuple[str, ...] = ()) -> Any:
        if name not in t:
            return default
        return c.choices(t[name], _key(k, name), choices, non_empty=False)

    flags = listed("judgement_flags", JUDGEMENT_FLAGS, JUDGEMENT_FLAGS)
    essentials = listed("essentials", ESSENTIALS)
    attestations = listed("essential_attestations", ())
    exclusion = listed("double_funding_exclusion", PROGRESS_KINDS)
    ptw = listed("progress_to_work_outcomes", ())
    for i, oid in enumerate(ptw or ()):
        if not any(o.id == oid for o in outcomes):
            c.fail(_key(_key(k, "progress_to_work_outcomes"), i),
                   f"'{oid}' is not an outcome id of this policy")
    route = None
    if "employment_route" in t:
        rk = _key(k, "employment_route")
        rt = c.table(t["employment_route"], rk, ("section", "measure", "note"),
                     ("section", "measure"))
        if rt is not None:
            rsection = c.string(rt, "section", rk)
            rmeasure = c.measure(rt["measure"], _key(rk, "measure")) if "measure" in rt else None
            if rsection is not None and rmeasure is not None:
                route = EmploymentRoute(rsection, rmeasure, c.note(rt, rk))
    after: list[tuple[str, str]] = []
    if "essential_attestations_after" in t:
        ak = _key(k, "essential_attestations_after")
        at = c.table(t["essential_attestations_after"], ak, tuple(attestations or ()))
        for code, anchor in (at or {}).items():
            name = c.choice(anchor, _key(ak, code), DATED_ESSENTIALS)
            if name is not None:
                after.append((code, name))
    if None in (section, stages, flags, essentials, attestations, exclusion, ptw):
        return None
    return ClaimRule(section, stages, c.boolean(t, "judgement_required", k, False),  # type: ignore
                     flags, essentials, attestations, exclusion, ptw, route, c.note(t, k),
                     tuple(after), c.boolean(t, "one_results_claim", k, False))


def _payments(c: _Checker, value: Any) -> tuple[Payment, ...]:
    out: list[Payment] = []
    for i, item in enumerate(c.tables(value, "payments")):
        k = _key("payments", i)
        t = c.table(item, k, ("item", "amount", "from", "to", "basis", "section", "note"),
                    ("item", "amount", "section"))
        if t is None:
            continue
        it = c.choice(t["item"], _key(k, "item"), PAYMENT_ITEMS) if "item" in t else None
        amount = None
        if "amount" in t:
            raw = t["amount"]
            whole = isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0
            if whole or (isinstance(raw, str) and MONEY.match(raw)):
                amount = Decimal(raw)
            elif isinstance(raw, str):
                c.fail(_key(k, "amount"), f'{raw!r} is not an amount in pounds such as "1000" '
                                          'or "800.50"')
            else:
                c._wrong(_key(k, "amount"), raw, 'pounds as a decimal string such as "1000"')
        start, end = c.day(t, "from", k), c.day(t, "to", k)
        if start and end and end < start:
            c.fail(_key(k, "to"), f"{end} is before from {start}")
        section = c.string(t, "section", k)
        basis = c.choice(t["basis"], _key(k, "basis"), PAYMENT_BASES) if "basis" in t \
            else "claim_date"
        if it is not None and amount is not None and section is not None and basis is not None:
            for other in out:
                if other.item == it and _overlap(other.start, other.end, start, end):
                    c.fail(k, f"a second '{it}' payment valid at the same time as another")
            out.append(Payment(it, amount, section, start, end, c.note(t, k), basis))
    return tuple(out)


def _overlap(a0: date | None, a1: date | None, b0: date | None, b1: date | None) -> bool:
    lo = max(a0 or date.min, b0 or date.min)
    hi = min(a1 or date.max, b1 or date.max)
    return lo <= hi


# --------------------------------------------------------------------------------------------
# Public API


def load_policy_bytes(data: bytes, path: str) -> Policy:
    """Validate the exact bytes of a policy file; ``path`` names it and gives its expected id."""
    try:
        policy, errors = _validate(_parse(data, path), data, path)
    except RecursionError:
        raise PolicyError(path, "", "nested too deeply to be a policy") from None
    if errors:
        raise errors[0]
    assert policy is not None
    return policy


def load_policy_file(path: str | Path) -> Policy:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise PolicyError(str(path), "", f"cannot read: {e.strerror}") from None
    return load_policy_bytes(data, str(path))
