"""The cohort: how many families, headline problems and claims, as of a valid date.

A projection in eventsourcing's sense. :class:`CohortProjection` turns each relevant domain
event into *facts with their dates* (a family and its identification date, an attachment
date, an indicator with its problem, stage and observation date, a claim with its route and
claim date, a claim's state change with the day it was recorded), and a
:class:`CohortView` (an eventsourcing ``TrackingRecorder`` with its own tables) stores them
together with the tracking position **in the same transaction**. Because only dated facts are
kept, one view answers the report for any ``as_of`` date by query; nothing is precomputed
per date.

Kept up to date incrementally: :func:`catch_up` reads the notification log from the view's
tracked position (``select_notifications``, filtered by the projection's topics) and applies
a page of events per transaction. This works on both backends; eventsourcing 9.5's
``ProjectionRunner`` needs ``subscribe()``, which SQLite's recorder does not implement, so
:func:`follow` (a live runner) exists for PostgreSQL only. :func:`rebuild` drops the view
and its tracking and replays the whole ledger; the incremental and rebuilt views agree.

Corrections are honoured as the evaluation timeline honours them: a ``Family.Corrected``
retracts the fact of the event it supersedes and adds its replacement's fact under the
correction's own event id. Replaying a prefix of the log again is harmless (every change is
an upsert or delete keyed by event, family or claim), and the single-row tracking guard
rolls back a page another process has already applied.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import (
    IntegrityError,
    Mapper,
    Tracking,
)
from eventsourcing.projection import Projection, ProjectionRunner
from eventsourcing.utils import get_topic

from ..domain.claim import STATE_AFTER, Claim
from ..domain.family import Family
from ..errors import UsageError
from ..ledger.envelope import event_id
from ..policy.evidence import PROBLEMS
from ..store import APP_NAME
from ..store.cohort_view import (  # noqa: F401 (the view's names, re-exported)
    TRACKING_TABLE,
    VIEW_NAME,
    VIEW_TABLES,
    Change,
    CohortView,
    PostgresCohortView,
    open_view,
)

if TYPE_CHECKING:
    from ..application import LedgerApp

PAGE = 2000
STAGES = ("identification", "engagement")
ROUTES = ("progress", "employment")
CLAIM_STATES = ("submitted", "validated", "rejected", "withdrawn", "reversed")

#: The only events that can change a cohort figure.
TOPICS = tuple(get_topic(c) for c in (
    Family.Registered, Family.Attached, Family.IndicatorRecorded, Family.Corrected,
    Family.Erased, Claim.Submitted, Claim.Validated, Claim.Rejected, Claim.Withdrawn,
    Claim.Reversed,
))


# --- facts: what one event changes ----------------------------------------------------------
Handler = Callable[[str, str, dict[str, Any], date], list[Change]]


def _ref(stream: str) -> str:
    return stream.split("/", 1)[1]


def _registered(stream: str, eid: str, p: dict[str, Any], _on: date) -> list[Change]:
    return [Change("family", (p["family_ref"], p["identified_on"], eid))]


def _attached(stream: str, eid: str, p: dict[str, Any], _on: date) -> list[Change]:
    return [Change("attachment", (eid, _ref(stream), p["attached_on"]))]


def _indicator(stream: str, eid: str, p: dict[str, Any], _on: date) -> list[Change]:
    return [Change("indicator", (eid, _ref(stream), p["problem"], p["stage"],
                                 p["observed_on"]))]


def _submitted(stream: str, eid: str, p: dict[str, Any], _on: date) -> list[Change]:
    return [Change("claim", (p["claim_id"], p["family_ref"], p["route"], p["claimed_on"]))]


def _state(state: str) -> Handler:
    def handler(stream: str, eid: str, p: dict[str, Any], on: date) -> list[Change]:
        version = int(eid.rsplit("#", 1)[1])
        return [Change("claim_state", (_ref(stream), version, state, on.isoformat()))]

    return handler


def _corrected(stream: str, eid: str, p: dict[str, Any], on: date) -> list[Change]:
    out = [Change("retract", (p["supersedes"],))]
    repl = p.get("replacement")
    if repl is not None:
        handler = HANDLERS.get(repl["type"])
        if handler is not None:
            out += handler(stream, eid, {k: v for k, v in repl.items() if k != "type"}, on)
    return out


def _erased(stream: str, eid: str, p: dict[str, Any], _on: date) -> list[Change]:
    return [Change("erase", (_ref(stream),))]


HANDLERS: dict[str, Handler] = {
    Family.Registered.__qualname__: _registered,
    Family.Attached.__qualname__: _attached,
    Family.IndicatorRecorded.__qualname__: _indicator,
    Family.Corrected.__qualname__: _corrected,
    Family.Erased.__qualname__: _erased,
    Claim.Submitted.__qualname__: _submitted,
    **{t: _state(state) for t, state in STATE_AFTER.items() if t != "Claim.Submitted"},
}


def changes_for(domain_event: Any) -> list[Change]:
    """The view changes one domain event makes.

    An erased family's events keep their place but not their data: they yield no fact, and
    ``Family.Erased`` removes whatever the view held for the family (its claims stay, being
    no personal data), so a view rebuilt after an erasure agrees with one that saw it happen.
    """
    handler = HANDLERS.get(type(domain_event).__qualname__)
    if handler is None:
        return []
    stream: str = domain_event.stream
    eid = event_id(stream, domain_event.originator_version)
    try:
        changes = handler(stream, eid, domain_event.payload(), domain_event.timestamp.date())
    except (KeyError, TypeError):  # the payload is not readable: there is no fact to count
        return []
    return [c for c in changes if None not in c.params]


# --- the view ---------------------------------------------------------------------------------
class CohortProjection(Projection[CohortView]):
    """eventsourcing projection: each relevant event's changes, applied with its tracking."""

    name = VIEW_NAME
    topics = TOPICS

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:  # type: ignore[override]
        self.view.apply(changes_for(domain_event), tracking)


# --- use cases --------------------------------------------------------------------------------
def catch_up(app: LedgerApp, view: CohortView, page: int = PAGE) -> int:
    """Apply every relevant event after the view's tracked position; return how many.

    A page of events is one transaction with the tracking of its last event. If another
    process recorded the same page first, the tracking guard rolls this one back and reading
    resumes from the newer position.
    """
    projection = CohortProjection(view=view)
    mapper: Mapper[Any] = app.mapper
    done = 0
    while True:
        start = (view.max_tracking_id(app.name) or 0) + 1
        notes = app.recorder.select_notifications(start, page, topics=projection.topics)
        if not notes:
            return done
        changes: list[Change] = []
        for n in notes:
            changes.extend(changes_for(mapper.to_domain_event(n)))
        try:
            view.apply(changes, Tracking(app.name, notes[-1].id))
        except IntegrityError:
            if (view.max_tracking_id(app.name) or 0) < notes[-1].id:
                raise
            continue
        done += len(notes)


def rebuild(app: LedgerApp, view: CohortView) -> int:
    """Drop the view and its tracking, then replay the whole ledger into it."""
    view.drop()
    return catch_up(app, view)


def report(view: CohortView, as_of: date) -> dict[str, Any]:
    """The cohort figures as of ``as_of`` from the view as it stands."""
    d = as_of.isoformat()
    identified = view.query("identified", (d,))[0]["n"]
    attached = view.query("attached", (d, d))[0]["n"]
    def zero() -> dict[str, int]:
        return dict.fromkeys((*STAGES, "families"), 0)

    problems = {p: zero() for p in PROBLEMS}
    for r in view.query("problems", (d, d)):
        problems.setdefault(r["problem"], zero())[r["stage"]] = int(r["n"])
    for r in view.query("problem_families", (d, d)):
        problems[r["problem"]]["families"] = int(r["n"])
    by_route = dict.fromkeys(ROUTES, 0)
    by_state = dict.fromkeys(CLAIM_STATES, 0)
    by_route_state: dict[str, dict[str, int]] = {}
    for r in view.query("claims", (d, d)):
        n = int(r["n"])
        by_route[r["route"]] = by_route.get(r["route"], 0) + n
        by_state[r["state"]] = by_state.get(r["state"], 0) + n
        by_route_state.setdefault(r["route"], dict.fromkeys(CLAIM_STATES, 0))[r["state"]] = n
    return {
        "as_of": d,
        "position": view.max_tracking_id(APP_NAME) or 0,
        "families": {"identified": int(identified), "attached": int(attached)},
        "problems": problems,
        "claims": {"total": sum(by_route.values()), "by_route": by_route, "by_state": by_state,
                   "by_route_and_state": by_route_state},
    }


def cohort_report(app: LedgerApp, as_of: date, *, fresh: bool = False) -> dict[str, Any]:
    """Bring the view up to date (or rebuild it when ``fresh``) and report as of ``as_of``."""
    view = open_view(app.location)
    processed = rebuild(app, view) if fresh else catch_up(app, view)
    result = report(view, as_of)
    result["processed"] = processed
    result["rebuilt"] = fresh
    return result


def csv_rows(result: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    """The report in long form: (as_of, group, item, count)."""
    d = result["as_of"]
    rows = [(d, "families", k, v) for k, v in result["families"].items()]
    for problem, counts in result["problems"].items():
        rows += [(d, f"problem_{k}", problem, v) for k, v in counts.items()]
    rows += [(d, "claims", "total", result["claims"]["total"])]
    rows += [(d, "claims_route", k, v) for k, v in result["claims"]["by_route"].items()]
    rows += [(d, "claims_state", k, v) for k, v in result["claims"]["by_state"].items()]
    for route, states in result["claims"]["by_route_and_state"].items():
        rows += [(d, f"claims_{route}", k, v) for k, v in states.items()]
    return rows


def render(result: dict[str, Any]) -> str:
    """The report as a short text table."""
    f, c = result["families"], result["claims"]
    lines = [f"cohort as of {result['as_of']} (ledger position {result['position']}; "
             f"{result['processed']} new events {'replayed' if result['rebuilt'] else 'applied'})",
             f"families identified {f['identified']:>6}", f"families attached  {f['attached']:>6}",
             "", f"{'headline problem':<20} {'identification':>14} {'engagement':>10} "
             f"{'families':>8}"]
    for p, n in result["problems"].items():
        lines.append(f"{p:<20} {n['identification']:>14} {n['engagement']:>10} "
                     f"{n['families']:>8}")
    lines += ["", f"claims {c['total']}: " + ", ".join(
        f"{k} {v}" for k, v in c["by_route"].items()),
        "  by state: " + ", ".join(f"{k} {v}" for k, v in c["by_state"].items())]
    return "\n".join(lines)


# --- a live follower (PostgreSQL) -------------------------------------------------------------
def follow(app: LedgerApp) -> ProjectionRunner[Any, Any]:
    """Start eventsourcing's ProjectionRunner keeping the view current as events arrive.

    PostgreSQL only: the runner subscribes to the recorder (LISTEN/NOTIFY), which
    eventsourcing 9.5 does not implement for SQLite; there, :func:`catch_up` on demand is the
    way. The runner reads through a ledger application like ``app`` (same name, same sealed
    mapper and family keys). Use as a context manager; ``runner.wait(position)`` blocks until
    that position is in the view.
    """
    location, settings = app.location, app.settings
    if location.backend != "postgres":
        raise UsageError("a live cohort follower needs PostgreSQL; on SQLite the report "
                         "catches up when it is asked for")
    ledger_class = type(app)

    class Reader(ledger_class):  # type: ignore[valid-type,misc]
        name = APP_NAME

        def __init__(self, env: Any = None):
            super().__init__(location, settings)

    return ProjectionRunner(application_class=Reader, projection_class=CohortProjection,
                            view_class=PostgresCohortView,
                            env={**location.env, "CREATE_TABLE": "true"})
