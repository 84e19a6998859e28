"""Spot checks: a deterministic, recorded sample of claims, and each check's result.

A sample is a pure function of its population, rate, seed and stratification
(:func:`choose`), and all four are recorded in the ``SpotCheckSample.Drawn`` event together
with the claims chosen, so anyone can re-derive the choice from the event alone, and the
population itself from the ledger as it stood when the sample was drawn (:func:`rederive`).

Population: every claim submitted before the draw that still stands (``submitted`` or
``validated``; rejected and withdrawn claims were never paid, reversed ones are repaid),
optionally only those with ``claimed_on`` in ``[from, to]``. The rate is a decimal fraction
(``0.1``) or a percentage (``10%``), stored as a decimal string; each stratum (the whole
population, or each route with ``--stratify route``) contributes ``ceil(rate x size)``
claims, drawn with ``random.Random(f"{seed}").sample`` from the sorted stratum, strata in
name order.
"""

from __future__ import annotations

import random
import shlex
from collections.abc import Iterable
from datetime import date
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from eventsourcing.utils import get_topic

from ..domain.claim import OPEN_STATES, STATE_AFTER, Claim, SpotCheckSample
from ..errors import UsageError
from . import claims
from .claims import claim_records

if TYPE_CHECKING:
    from ..application import LedgerApp

RESULTS = ("upheld", "failed")
STRATA = ("route",)
_LIFECYCLE = [get_topic(t) for t in (Claim.Submitted, Claim.Validated, Claim.Rejected,
                                     Claim.Withdrawn, Claim.Reversed)]
_DRAWN = get_topic(SpotCheckSample.Drawn)
_CHECKED = get_topic(Claim.SpotChecked)


def parse_rate(text: str) -> Decimal:
    """``0.1``, ``.05`` or ``10%``: a fraction in (0, 1], never a float."""
    t = text.strip()
    try:
        rate = Decimal(t[:-1]) / 100 if t.endswith("%") else Decimal(t)
    except InvalidOperation:
        raise UsageError(f"--rate: {text!r} is not a decimal fraction (0.1) or percentage "
                         "(10%)") from None
    if not rate.is_finite() or not 0 < rate <= 1:
        raise UsageError(f"--rate: {text!r} must be more than 0 and at most 1 (100%)")
    return rate


def rate_text(rate: Decimal) -> str:
    """The decimal string recorded in the event: ``0.1``, ``0.05``, ``1``."""
    return format(rate.normalize(), "f")


def sample_size(rate: Decimal, n: int) -> int:
    return int((rate * n).to_integral_value(rounding=ROUND_CEILING))


def route_of(claim_id: str) -> str:
    """A claim id is ``<family_ref>/<route>`` (see :meth:`Claim.make_id`)."""
    return claim_id.rsplit("/", 1)[-1]


def choose(population: Iterable[str], rate: Decimal, seed: int,
           stratify: str | None = None) -> list[str]:
    """The sample: pure, so the same population, rate and seed give the same claims."""
    strata: dict[str, list[str]] = {}
    for cid in sorted(set(population)):
        strata.setdefault(route_of(cid) if stratify == "route" else "", []).append(cid)
    rng = random.Random(f"{seed}")
    chosen: list[str] = []
    for key in sorted(strata):
        members = strata[key]
        chosen.extend(rng.sample(members, sample_size(rate, len(members))))
    return sorted(chosen)


def population(app: LedgerApp, *, stop: int | None = None, from_on: date | None = None,
               to_on: date | None = None) -> list[str]:
    """Standing claims submitted at ledger positions up to ``stop``, by claimed_on range."""
    claimed: dict[str, str] = {}
    status: dict[str, str] = {}
    for _, rec in claim_records(app, list(_LIFECYCLE), stop=stop):
        cid = rec["envelope"]["stream"].removeprefix(Claim.STREAM_PREFIX + "/")
        typ = rec["envelope"]["type"]
        if typ == "Claim.Submitted":
            claimed[cid] = (rec.get("payload") or {}).get("claimed_on", "")
            status[cid] = "submitted"
        else:
            status[cid] = STATE_AFTER[typ]
    lo = from_on.isoformat() if from_on else ""
    hi = to_on.isoformat() if to_on else "9999-12-31"
    return sorted(cid for cid, on in claimed.items()
                  if status[cid] in OPEN_STATES and lo <= on <= hi)


def _drawn(app: LedgerApp) -> list[tuple[int, dict[str, Any]]]:
    """(position, record) of every sample drawn, in ledger order."""
    return list(claim_records(app, [_DRAWN]))


def draw(app: LedgerApp, rate: str, seed: int, *, from_on: date | None = None,
         to_on: date | None = None, stratify: str | None = None) -> dict[str, Any]:
    """Draw and record a sample (``SpotCheckSample.Drawn``)."""
    r = parse_rate(rate)
    if stratify is not None and stratify not in STRATA:
        raise UsageError(f"--stratify: {stratify!r} is not one of {', '.join(STRATA)}")
    if from_on and to_on and to_on < from_on:
        raise UsageError(f"--to {to_on} is before --from {from_on}")
    pop = population(app, from_on=from_on, to_on=to_on)
    if not pop:
        raise UsageError("no standing claims in the population"
                         + (f" claimed {from_on or '…'}..{to_on or '…'}"
                            if from_on or to_on else ""))
    chosen = choose(pop, r, seed, stratify)
    sample_id = f"SC-{len(_drawn(app)) + 1:04d}"
    ctx = app.context()
    sample = SpotCheckSample.draw(
        ctx, sample_id=sample_id, rate=rate_text(r), seed=seed, stratify=stratify,
        from_on=from_on.isoformat() if from_on else None,
        to_on=to_on.isoformat() if to_on else None, population=pop, chosen=chosen,
    )
    app.commit(sample)
    return {"sample_id": sample_id, "rate": rate_text(r), "seed": seed, "stratify": stratify,
            "from": from_on.isoformat() if from_on else None,
            "to": to_on.isoformat() if to_on else None, "population": len(pop),
            "chosen": chosen, "by": ctx.actor, "recorded_at": ctx.recorded_at_iso}


def _sample(app: LedgerApp, sample_id: str) -> tuple[int, dict[str, Any]]:
    for pos, rec in _drawn(app):
        if rec["payload"]["sample_id"] == sample_id:
            return pos, rec
    raise UsageError(f"no spot-check sample {sample_id!r} (see `claimledger spotcheck list`)")


def rederive(app: LedgerApp, sample_id: str) -> dict[str, Any]:
    """Re-derive a recorded sample: the choice from its own fields, the population from the
    ledger as it stood just before the draw. ``ok`` is False when either differs."""
    pos, rec = _sample(app, sample_id)
    p = rec["payload"]
    reasons: list[str] = []
    again = choose(p["population"], parse_rate(p["rate"]), p["seed"], p["stratify"])
    if again != p["chosen"]:
        reasons.append(f"seed {p['seed']} at rate {p['rate']} over the recorded population "
                       f"chooses {again}, the event records {p['chosen']}")
    pop = population(app, stop=pos - 1,
                     from_on=date.fromisoformat(p["from_on"]) if p["from_on"] else None,
                     to_on=date.fromisoformat(p["to_on"]) if p["to_on"] else None)
    if pop != p["population"]:
        missing = sorted(set(pop) - set(p["population"]))
        extra = sorted(set(p["population"]) - set(pop))
        reasons.append("the ledger before the draw gives a different population"
                       + (f"; left out: {', '.join(missing)}" if missing else "")
                       + (f"; not standing claims then: {', '.join(extra)}" if extra else ""))
    return {"sample_id": sample_id, "ok": not reasons, "reasons": reasons, "rate": p["rate"],
            "seed": p["seed"], "stratify": p["stratify"], "population": len(p["population"]),
            "chosen": p["chosen"], "rederived": again, "position": pos}


def record(app: LedgerApp, claim_id: str, result: str, reason: str,
           sample_id: str | None = None, reverse: str | None = None) -> dict[str, Any]:
    """Record a spot check's result on the claim (``Claim.SpotChecked``, actor recorded).

    Without ``sample_id`` the check is linked to the latest sample that chose the claim, if
    any; with it, that sample must have chosen the claim. ``reverse`` (a reversal reason, for
    a failed check only): the claim is reversed in the same transaction, or neither is
    recorded. A failed check without it says the ``claim reverse`` command that repays it."""
    if result not in RESULTS:
        raise UsageError(f"--result: {result!r} is not one of {', '.join(RESULTS)}")
    if reverse is not None and result != "failed":
        raise UsageError("--reverse: only a failed spot check reverses the claim")
    with app.writing():
        claim, out = _record(app, claim_id, result, reason, sample_id)
        out["reversed"] = (None if reverse is None
                           else claims.reverse_pending(app, claim, reverse, reason))
        app.commit(claim)
    out["reverse_command"] = (
        f"claimledger claim reverse {claim_id} --reason CODE --note {shlex.quote(reason)}"
        if result == "failed" and reverse is None else None)
    return out


def _record(app: LedgerApp, claim_id: str, result: str, reason: str,
            sample_id: str | None) -> tuple[Claim, dict[str, Any]]:
    if not reason.strip():
        raise UsageError("--reason: say why the check upheld or failed the claim")
    claim = app.find(Claim, claim_id)
    if claim is None:
        raise UsageError(f"no claim {claim_id!r} (see `claimledger claim list`)")
    if sample_id is not None:
        _, rec = _sample(app, sample_id)
        if claim_id not in rec["payload"]["chosen"]:
            raise UsageError(f"sample {sample_id} did not choose claim {claim_id}")
    else:
        sample_id = next((rec["payload"]["sample_id"] for _, rec in reversed(_drawn(app))
                          if claim_id in rec["payload"]["chosen"]), None)
    ctx = app.context()
    claim.record_spot_check(ctx, result, reason.strip(), sample_id)
    return claim, {"claim_id": claim_id, "result": result, "reason": reason.strip(),
                   "sample_id": sample_id, "by": ctx.actor, "recorded_at": ctx.recorded_at_iso}


def list_samples(app: LedgerApp) -> list[dict[str, Any]]:
    """Every sample with the spot-check results recorded against it so far."""
    results: dict[str, dict[str, list[str]]] = {}
    for _, rec in claim_records(app, [_CHECKED]):
        p = rec.get("payload") or {}
        cid = rec["envelope"]["stream"].removeprefix(Claim.STREAM_PREFIX + "/")
        results.setdefault(p.get("sample_id") or "", {}).setdefault(cid, []).append(
            p.get("result", "?"))
    out = []
    for _, rec in _drawn(app):
        p = rec["payload"]
        checked = results.get(p["sample_id"], {})
        out.append({
            "sample_id": p["sample_id"], "recorded_at": rec["envelope"]["recorded_at"],
            "by": rec["envelope"]["actor"], "rate": p["rate"], "seed": p["seed"],
            "stratify": p["stratify"], "from": p["from_on"], "to": p["to_on"],
            "population": len(p["population"]), "chosen": p["chosen"],
            "results": {cid: checked[cid][-1] for cid in p["chosen"] if cid in checked},
        })
    return out

