"""Calendar arithmetic for measure windows, in whole days, weeks and calendar months.

Policies say "in the last 6 months" and "26 of the last 30 weeks"; every measure counts such
windows back from the review date the same way, so the arithmetic lives here, once.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import date, timedelta

ONE_DAY = timedelta(days=1)


def months_before(day: date, months: int) -> date:
    """``day`` minus whole calendar months, clamped to the month's end (31 Aug - 6 = 29 Feb)."""
    index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def weeks_before(day: date, weeks: int) -> date:
    return day - timedelta(weeks=weeks)


def in_window(day: date, start_exclusive: date, end_inclusive: date) -> bool:
    """Whether ``day`` lies in the half-open window (start, end] every measure uses."""
    return start_exclusive < day <= end_inclusive


def span(start_exclusive: date, end_inclusive: date) -> str:
    """A window as a person reads it: its first and last day, both inclusive."""
    return f"{(start_exclusive + ONE_DAY).isoformat()}..{end_inclusive.isoformat()}"


def merge_spells(spells: Iterable[tuple[date, date]]) -> list[tuple[date, date]]:
    """Merge inclusive day ranges that overlap or touch (one ends the day before the next)."""
    merged: list[tuple[date, date]] = []
    for start, end in sorted(spells):
        if merged and start <= merged[-1][1] + ONE_DAY:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def days_covered(spells: Iterable[tuple[date, date]], start: date, end: date) -> int:
    """Days of the inclusive range start..end covered by at least one spell."""
    total = 0
    for s, e in merge_spells(spells):
        lo, hi = max(s, start), min(e, end)
        if lo <= hi:
            total += (hi - lo).days + 1
    return total
