"""Claim windows: evaluate every family, claim the claimable ones together, record the run.

A council claims in windows (monthly or quarterly), each taking the families whose outcomes
were reached in a date range ``[FROM, TO]``. :func:`run` evaluates every family of the ledger
without a standing claim (a family's result is paid once, by one route), as of ``as_of``
(the window's last day unless said otherwise), as known now, with the same decision a single
``claim submit`` makes.

*Reached in the window.* The decision says whether a family is claimable on a date, not the
date its claimable outcome was first reached, so a window's reading is: **claimable on
``as_of``, and either not claimable on the day before FROM (``reached: in_window``) or
claimable then but not yet claimed (``reached: before_window``, carried forward so that a
window that was never run loses no family)**. Both kinds are claimed; the listing says which.

With ``submit`` every claimable family's claim is recorded in one writer transaction, with a
``ClaimRun.Recorded`` event (window, as-of, the policies' sha256, counts and totals by route,
the claim ids, and the internal-audit sample if a rate was given) and exactly one checkpoint
sealed over them all. A run that finds nothing to claim records nothing, so running a window
again claims nothing new. :func:`rederive` checks a recorded run against the ledger.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from eventsourcing.utils import get_topic

from ..domain.base import iso_utc
from ..domain.claim import OPEN_STATES, Claim, ClaimRun
from ..domain.family import Family
from ..errors import ClaimLedgerError, ErasedError, UsageError
from ..evaluate.service import current_policies, family_records
from ..persistence import topic_records
from . import claims, spotcheck

if TYPE_CHECKING:
    from ..application import LedgerApp

_REGISTERED = get_topic(Family.Registered)
_RUN = get_topic(ClaimRun.Recorded)


def family_refs(app: LedgerApp) -> list[str]:
    """Every family of the ledger (from its stream's name: erased families are listed too)."""
    prefix = Family.STREAM_PREFIX + "/"
    return sorted({rec["envelope"]["stream"].removeprefix(prefix)
                   for _, rec in topic_records(app.recorder, _REGISTERED)})


def runs(app: LedgerApp) -> list[dict[str, Any]]:
    """Every recorded run, oldest first, with its position and moment."""
    return [{**rec["payload"], "position": pos, "recorded_at": rec["envelope"]["recorded_at"],
             "by": rec["envelope"]["actor"]} for pos, rec in claims.claim_records(app, [_RUN])]


def find_run(app: LedgerApp, run_id: str | None = None,
             window: tuple[date, date] | None = None) -> dict[str, Any]:
    """A recorded run by id, or the latest run of a window."""
    every = runs(app)
    if run_id is not None:
        found = [r for r in every if r["run_id"] == run_id]
        if not found:
            raise UsageError(f"no claim run {run_id!r} (see `claimledger claim runs`)")
        return found[0]
    assert window is not None
    lo, hi = (d.isoformat() for d in window)
    found = [r for r in every if (r["from_on"], r["to_on"]) == (lo, hi)]
    if not found:
        raise UsageError(f"no claim run recorded for the window {lo}..{hi} (run `claimledger "
                         f"claim run --window {lo} {hi} --submit` first)")
    return found[-1]


def check_window(from_on: date, to_on: date, as_of: date | None) -> date:
    """The as-of date of a window (its last day unless given); refuses nonsense windows."""
    if to_on < from_on:
        raise UsageError(f"--window: {to_on} is before {from_on}")
    as_of = as_of or to_on
    if as_of < from_on:
        raise UsageError(f"--as-of {as_of} is before the window's first day {from_on}")
    return as_of


def _amount(text: str | None) -> Decimal:
    return Decimal(text) if text else Decimal(0)


def plan(app: LedgerApp, from_on: date, as_of: date, known_at: str) -> dict[str, Any]:
    """Every family's verdict for the window: the claimable (with route, payment and when the
    outcome was reached), the near misses (eligible, not claimable, with the reasons), and
    counts of the rest. A family with a standing claim is not evaluated (a family's result
    is paid once). Writes nothing."""
    states = {c["claim_id"]: c["status"] for c in claims.claim_states(app)}
    standing = {cid.rsplit("/", 1)[0] for cid, st in states.items() if st in OPEN_STATES}
    policies = current_policies()
    before = from_on - timedelta(days=1)
    claimable: list[dict[str, Any]] = []
    near: list[dict[str, Any]] = []
    counted: Counter[str] = Counter()
    decided: dict[str, tuple[Any, Any]] = {}
    for ref in family_refs(app):
        if ref in standing:
            counted["already_claimed"] += 1
            continue
        try:
            records = family_records(app, ref)
            policy, d = claims.decide_now(app, ref, as_of, known_at, policies, records)
        except ErasedError:
            counted["erased"] += 1
            continue
        except ClaimLedgerError as e:
            near.append({"family_ref": ref, "eligible": None, "reasons": [str(e)]})
            continue
        counted["evaluated"] += 1
        if not d.claimable or d.route is None:
            if d.eligible:
                near.append({"family_ref": ref, "eligible": True, "reasons": list(d.reasons)})
            else:
                counted["not_eligible"] += 1
            continue
        cid = Claim.make_id(ref, d.route)
        if cid in states:  # rejected, withdrawn or reversed: one claim per family and route
            near.append({"family_ref": ref, "eligible": True, "reasons": [
                f"claimable by the {d.route} route, but claim {cid} exists ({states[cid]}); "
                "one claim per family and route"]})
            continue
        try:
            earlier = claims.decide_now(app, ref, before, known_at, policies,
                                        records)[1].claimable
        except ClaimLedgerError:  # no plan in force then, or nothing to decide on
            earlier = False
        pay = d.payment
        claimable.append({
            "claim_id": cid, "family_ref": ref, "route": d.route, "policy_id": policy.id,
            "policy_sha256": policy.sha256,
            "amount": None if pay is None else str(pay.amount),
            "item": None if pay is None else pay.item,
            "reached": "before_window" if earlier else "in_window",
        })
        decided[cid] = (policy, d)
    return {"claimable": claimable, "near_misses": near, "counts": dict(counted),
            "decided": decided}


def totals(rows: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, str]]:
    """Counts and amounts by route (and ``total``) of claims or would-be claims."""
    counts: Counter[str] = Counter(r["route"] for r in rows)
    amounts: dict[str, Decimal] = {}
    for r in rows:
        amounts[r["route"]] = amounts.get(r["route"], Decimal(0)) + _amount(r["amount"])
    sums = {k: str(v) for k, v in sorted(amounts.items())}
    sums["total"] = str(sum(amounts.values(), Decimal(0)))
    return dict(sorted(counts.items())), sums


def _audit(ids: list[str], rate: str | None, seed: int | None) -> dict[str, Any] | None:
    if rate is None:
        return None
    r = spotcheck.parse_rate(rate)
    assert seed is not None
    return {"rate": spotcheck.rate_text(r), "seed": seed, "population": sorted(ids),
            "chosen": spotcheck.choose(ids, r, seed)}


def run(app: LedgerApp, from_on: date, to_on: date, *, as_of: date | None = None,
        submit: bool = False, audit_rate: str | None = None,
        audit_seed: int | None = None) -> dict[str, Any]:
    """The window's claimable families, and with ``submit`` their claims recorded together."""
    as_of = check_window(from_on, to_on, as_of)
    if (audit_rate is None) != (audit_seed is None):
        raise UsageError("--audit-rate and --seed go together (the sample is re-derivable "
                         "from both)")
    if audit_rate is not None:
        spotcheck.parse_rate(audit_rate)  # a bad rate is refused before any work
    head = {"from": from_on.isoformat(), "to": to_on.isoformat(), "as_of": as_of.isoformat()}
    if not submit:
        known_at = iso_utc(app.settings.clock())
        p = plan(app, from_on, as_of, known_at)
        counts, sums = totals(p["claimable"])
        return {**head, "known_at": known_at, "dry_run": True, "run_id": None,
                "claimable": p["claimable"], "near_misses": p["near_misses"],
                "families": p["counts"], "counts": counts, "totals": sums, "submitted": [],
                "audit": _audit([c["claim_id"] for c in p["claimable"]], audit_rate,
                                audit_seed), "checkpoint": None}
    with app.writing():
        known_at = app.context().recorded_at_iso
        p = plan(app, from_on, as_of, known_at)
        counts, sums = totals(p["claimable"])
        ids = [c["claim_id"] for c in p["claimable"]]
        audit = _audit(ids, audit_rate, audit_seed)
        out = {**head, "known_at": known_at, "dry_run": False, "run_id": None,
               "claimable": p["claimable"], "near_misses": p["near_misses"],
               "families": p["counts"], "counts": counts, "totals": sums, "submitted": [],
               "audit": audit, "checkpoint": None}
        if not ids:
            return out
        registered: set[str] = set()
        pending: list[Any] = []
        for cid in ids:
            policy, d = p["decided"][cid]
            pending += claims.record_claim(app, policy, d, as_of, known_at, registered)[1]
        run_id = f"CR-{len(runs(app)) + 1:04d}"
        pending.append(ClaimRun.record(
            app.context(), run_id=run_id, from_on=head["from"], to_on=head["to"],
            as_of=head["as_of"], known_at=known_at,
            policies={c["policy_id"]: c["policy_sha256"] for c in p["claimable"]},
            evaluated=p["counts"].get("evaluated", 0), counts=counts, totals=sums,
            claim_ids=ids, audit=audit))
        app.commit(*pending)
        out["checkpoint"] = app.seal()
        out["run_id"] = run_id
        out["submitted"] = ids
        return out


def run_claims(app: LedgerApp, run: dict[str, Any]) -> list[dict[str, Any]]:
    """The ledger's claims recorded by a run: submitted in its transaction (at its moment),
    dated its as-of day."""
    return [c for c in claims.claim_states(app)
            if c["known_at"] == run["known_at"] and c["claimed_on"] == run["as_of"]]


def rederive(app: LedgerApp, run_id: str) -> dict[str, Any]:
    """Re-derive a recorded run from the ledger: which claims it recorded, their counts and
    totals from the claims' own amounts, the policies they name, and the internal-audit
    sample from its rate and seed. ``ok`` is False when anything differs."""
    r = find_run(app, run_id)
    found = run_claims(app, r)
    reasons: list[str] = []
    ids = [c["claim_id"] for c in found]
    if sorted(ids) != sorted(r["claim_ids"]):
        missing = sorted(set(r["claim_ids"]) - set(ids))
        extra = sorted(set(ids) - set(r["claim_ids"]))
        reasons.append("the ledger's claims of the run differ from the event"
                       + (f"; not in the ledger: {', '.join(missing)}" if missing else "")
                       + (f"; not in the event: {', '.join(extra)}" if extra else ""))
    counts, sums = totals(found)
    if counts != r["counts"]:
        reasons.append(f"claims by route: the ledger gives {counts}, the event {r['counts']}")
    if sums != r["totals"]:
        reasons.append(f"payment totals: the ledger gives {sums}, the event {r['totals']}")
    named = {c["policy_id"]: c["policy_sha256"] for c in found}
    if named != r["policies"]:
        reasons.append(f"policies: the claims name {named}, the event {r['policies']}")
    audit = r["audit"]
    again = None
    if audit is not None:
        again = spotcheck.choose(audit["population"], spotcheck.parse_rate(audit["rate"]),
                                 audit["seed"])
        if again != audit["chosen"]:
            reasons.append(f"seed {audit['seed']} at rate {audit['rate']} chooses {again}, "
                           f"the event records {audit['chosen']}")
        if sorted(audit["population"]) != sorted(ids):
            reasons.append("the internal-audit population is not the run's claims")
    return {"run_id": run_id, "ok": not reasons, "reasons": reasons, "from": r["from_on"],
            "to": r["to_on"], "as_of": r["as_of"], "claims": len(found), "counts": counts,
            "totals": sums, "audit_chosen": None if audit is None else audit["chosen"],
            "rederived_chosen": again, "position": r["position"]}
