"""Claim lifecycle: submit (decide, record, seal), validate, reject, withdraw, reverse, list,
explain.

A submission records the decision, the registered policy version (its exact bytes are stored
in the ledger the first time they are used) and the claimledger version, then seals a
checkpoint. ``explain`` replays the decision as known at submission with those registered
bytes, checks it comes out the same, and says what later events would change today.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING, Any

from eventsourcing.utils import get_topic

from .. import __version__
from ..domain.base import iso_utc
from ..domain.claim import OPEN_STATES, REVERSAL_REASONS, STATE_AFTER, Claim
from ..domain.ledger import PolicyVersion
from ..errors import ClaimRefusedError, ErasedError, IntegrityError, UsageError
from ..evaluate.replay import replay
from ..evaluate.service import (
    choose_policy,
    current_policies,
    family_records,
    policy_from_bytes,
)
from ..persistence import checked_record

if TYPE_CHECKING:
    from ..application import LedgerApp

DECISION_FIELDS = ("eligible", "claimable", "route", "reasons", "problems")
ROUTES = ("progress", "employment")


def submit(app: LedgerApp, family_ref: str, on: date) -> dict[str, Any]:
    """Decide, record the claim and seal a checkpoint over it, in one transaction under
    the writers' lock: the decision reads the ledger as known at the moment the claim is
    recorded (nothing can be appended between), and a claim is never committed without its
    checkpoint."""
    with app.writing():
        return _submit(app, family_ref, on)


def _submit(app: LedgerApp, family_ref: str, on: date) -> dict[str, Any]:
    known_at = app.context().recorded_at_iso
    policy, decision = decide_now(app, family_ref, on, known_at)
    result, pending = record_claim(app, policy, decision, on, known_at, set())
    app.commit(*pending)
    result["checkpoint"] = app.seal()
    return result


def decide_now(app: LedgerApp, family_ref: str, on: date, known_at: str,
               policies: list[Any] | None = None,
               records: list[tuple[str, dict[str, Any]]] | None = None) -> tuple[Any, Any]:
    """(policy, decision) for the family on ``on`` as known at ``known_at``: the policy is
    the family's authority's plan in force on ``on``. ``policies`` and ``records``: the
    loaded policies and the family's records, when the caller already has them."""
    if records is None:
        records = family_records(app, family_ref)
    policy, _, decision = replay(records, on, known_at, lambda ev: choose_policy(
        policies or current_policies(), ev.policy_id, on))
    return policy, decision


def record_claim(app: LedgerApp, policy: Any, decision: Any, on: date, known_at: str,
                 registered: set[str]) -> tuple[dict[str, Any], list[Any]]:
    """The claim a claimable decision makes, and the aggregates to commit for it (the policy
    version too, the first time its bytes are used; ``registered``: the sha256s already
    pending in this transaction, which the caller keeps across claims). Nothing is sealed."""
    family_ref = decision.family_ref
    if not decision.claimable or decision.route is None:
        raise ClaimRefusedError(
            f"family {family_ref} is not claimable on {on.isoformat()}", decision.reasons
        )
    claim_id = Claim.make_id(family_ref, decision.route)
    existing = app.find(Claim, claim_id)
    if existing is not None:
        raise ClaimRefusedError(
            f"family {family_ref} already has {_article(decision.route)} {decision.route} "
            f"claim ({claim_id}, "
            f"{existing.status}); one claim per family and route"
        )
    if policy.claim.one_results_claim:
        _refuse_a_second_route(app, family_ref, decision.route, policy.id)
    ctx = app.context()
    record = decision.to_dict()
    payment = decision.payment
    amount = None if payment is None else str(payment.amount)
    pending: list[Any] = []
    if policy.sha256 not in registered and app.find(PolicyVersion, policy.sha256) is None:
        pending.append(PolicyVersion.register(
            ctx, policy_id=policy.id, sha256=policy.sha256, path=str(policy.path),
            content=policy.content.decode("utf-8"),
        ))
    registered.add(policy.sha256)
    pending.append(Claim.submit(
        ctx, claim_id=claim_id, family_ref=family_ref, route=decision.route,
        claimed_on=on.isoformat(), known_at=known_at, policy_id=policy.id,
        policy_sha256=policy.sha256, claimledger_version=__version__,
        amount=amount, decision=record,
    ))
    return {
        "claim_id": claim_id,
        "family_ref": family_ref,
        "route": decision.route,
        "claimed_on": on.isoformat(),
        "known_at": known_at,
        "policy_id": policy.id,
        "policy_sha256": policy.sha256,
        "amount": amount,
    }, pending


def _refuse_a_second_route(app: LedgerApp, family_ref: str, route: str, policy_id: str) -> None:
    """A policy that pays one results claim per family refuses a claim by a second route while
    a claim by another stands (submitted or validated; a rejected or withdrawn one does not)."""
    for other in ROUTES:
        claim = app.find(Claim, Claim.make_id(family_ref, other)) if other != route else None
        if claim is not None and claim.status in OPEN_STATES:
            raise ClaimRefusedError(
                f"family {family_ref} already has {_article(other)} {other} claim "
                f"({claim.claim_id}, {claim.status}); {policy_id} pays one results claim per "
                f"family, whichever route shows it (see `claimledger policy show {policy_id}`, "
                "[claim] note)"
            )


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _claim(app: LedgerApp, claim_id: str) -> Claim:
    claim = app.find(Claim, claim_id)
    if claim is None:
        raise UsageError(f"no claim {claim_id!r} (see `claimledger claim list`)")
    return claim


def _move(app: LedgerApp, claim_id: str, action: str, text: str | None) -> dict[str, Any]:
    claim = _claim(app, claim_id)
    if claim.status not in OPEN_STATES or (action == "validate" and claim.status == "validated"):
        raise ClaimRefusedError(f"claim {claim_id} is {claim.status}; cannot {action} it")
    ctx = app.context()
    if action == "validate":
        claim.validate(ctx, text)
    elif action == "reject":
        claim.reject(ctx, text or "")
    else:
        claim.withdraw(ctx, text or "")
    app.commit(claim)
    return {"claim_id": claim_id, "status": claim.status, "by": ctx.actor,
            "recorded_at": ctx.recorded_at_iso}


def validate(app: LedgerApp, claim_id: str, note: str | None) -> dict[str, Any]:
    return _move(app, claim_id, "validate", note)


def reject(app: LedgerApp, claim_id: str, reason: str) -> dict[str, Any]:
    return _move(app, claim_id, "reject", reason)


def withdraw(app: LedgerApp, claim_id: str, reason: str) -> dict[str, Any]:
    return _move(app, claim_id, "withdraw", reason)


def claim_records(app: LedgerApp, topics: list[str], *, stop: int | None = None
                  ) -> Iterator[tuple[int, dict[str, Any]]]:
    """(position, checked record) of each claim-side event of ``topics`` up to position
    ``stop``, in ledger order: read through the claim events' index, so the cost is the
    claims', not the ledger's."""
    for position, topic, state in app.claim_events.read(topics, stop=stop):
        yield position, checked_record(topic, state)


def reverse(app: LedgerApp, claim_id: str, reason: str, note: str | None) -> dict[str, Any]:
    """Reverse a standing claim (``Claim.Reversed``): its payment is to be repaid, and the
    next claim return lists it."""
    claim = _claim(app, claim_id)
    out = reverse_pending(app, claim, reason, note)
    app.commit(claim)
    return out


def reverse_pending(app: LedgerApp, claim: Claim, reason: str, note: str | None
                    ) -> dict[str, Any]:
    """Append the reversal to ``claim`` for the caller to commit. Only a submitted or
    validated claim can be reversed (a rejected or withdrawn one was never paid)."""
    if reason not in REVERSAL_REASONS:
        raise UsageError(f"--reason: {reason!r} is not one of {', '.join(REVERSAL_REASONS)}")
    if claim.status not in OPEN_STATES:
        raise ClaimRefusedError(f"claim {claim.claim_id} is {claim.status}; only a submitted "
                                "or validated claim can be reversed")
    ctx = app.context()
    text = note.strip() if note and note.strip() else None
    claim.reverse(ctx, reason, text)
    return {"claim_id": claim.claim_id, "status": claim.status, "reason": reason,
            "note": text, "by": ctx.actor, "recorded_at": ctx.recorded_at_iso}


def claim_ids(app: LedgerApp) -> list[str]:
    """Every claim in submission order."""
    return [str(rec["payload"]["claim_id"])
            for _, rec in claim_records(app, [get_topic(Claim.Submitted)])]


def list_claims(app: LedgerApp) -> list[dict[str, Any]]:
    """Every claim in submission order: family, route, claim date, state, spot checks."""
    return [{"claim_id": c["claim_id"], "family_ref": c["family_ref"], "route": c["route"],
             "claimed_on": c["claimed_on"], "status": c["status"],
             "spot_checks": [x["result"] for x in c["spot_checks"]]}
            for c in claim_states(app)]


#: Every event type of a claim's stream, as stored topics.
_CLAIM_TOPICS = [get_topic(getattr(Claim, t)) for t in (
    "Submitted", "Validated", "Rejected", "Withdrawn", "Reversed", "SpotChecked")]


def claim_states(app: LedgerApp) -> list[dict[str, Any]]:
    """Every claim in submission order with what returns and reports need: its payment (amount
    and item as the decision recorded them), its state, its spot checks and its reversal.

    One pass over the claim events, in ledger order, through their index: the cost of the
    claims' events, not of the ledger, and no query per claim."""
    rows: dict[str, dict[str, Any]] = {}
    prefix = Claim.STREAM_PREFIX + "/"
    for _, r in claim_records(app, _CLAIM_TOPICS):
        env, p = r["envelope"], r.get("payload") or {}
        cid = env["stream"].removeprefix(prefix)
        if env["type"] == "Claim.Submitted":
            payment = (p.get("decision") or {}).get("payment") or {}
            rows[cid] = {
                "claim_id": cid, "family_ref": p["family_ref"], "route": p["route"],
                "claimed_on": p["claimed_on"], "known_at": p["known_at"],
                "submitted_at": env["recorded_at"],
                "policy_id": p["policy_id"], "policy_sha256": p["policy_sha256"],
                "amount": p.get("amount"), "item": payment.get("item"), "status": "submitted",
                "spot_checks": [], "reversal": None,
            }
            continue
        row = rows.get(cid)
        if row is None:
            raise IntegrityError(f"{env['stream']}#{env['version']}: a {env['type']} event "
                                 "without the claim's Claim.Submitted (run `claimledger verify`)")
        row["status"] = STATE_AFTER.get(env["type"], row["status"])
        if env["type"] == "Claim.SpotChecked":
            row["spot_checks"].append({"result": p.get("result"), "reason": p.get("reason"),
                                       "sample_id": p.get("sample_id"),
                                       "at": env["recorded_at"], "by": env["actor"]})
        elif env["type"] == "Claim.Reversed":
            row["reversal"] = {"reason": p.get("reason"), "note": p.get("note"),
                               "at": env["recorded_at"], "by": env["actor"]}
    return list(rows.values())


def _submitted(app: LedgerApp, claim_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    records = app.stream_records(Claim.stream_name(claim_id))
    if not records:
        raise UsageError(f"no claim {claim_id!r} (see `claimledger claim list`)")
    history = [
        {"event": f"{r['envelope']['stream']}#{r['envelope']['version']}",
         "type": r["envelope"]["type"], "recorded_at": r["envelope"]["recorded_at"],
         "actor": r["envelope"]["actor"], "hash": r["hash"], **(r.get("payload") or {})}
        for _, r in records
    ]
    for h in history[:1]:
        h.pop("decision", None)
    return records[0][1]["payload"], history


def _status(history: list[dict[str, Any]]) -> str:
    """The claim's state from its own events (no aggregate replay needed)."""
    state = "submitted"
    for h in history:
        state = STATE_AFTER.get(h["type"], state)
    return state


_REGISTERED: dict[str, Any] = {}


def registered_policy(app: LedgerApp, sha256: str) -> Any:
    """The policy a claim names, parsed from the exact bytes registered in the ledger.

    Registered bytes never change (their stream is keyed by their SHA-256, which is checked
    here), so a parsed policy is kept per process.
    """
    if sha256 in _REGISTERED:
        return _REGISTERED[sha256]
    records = app.stream_records(PolicyVersion.stream_name(sha256))
    if not records:
        raise UsageError(f"policy version {sha256[:16]}… is not registered in the ledger")
    p = records[0][1]["payload"]
    content = p["content"].encode("utf-8")
    if hashlib.sha256(content).hexdigest() != sha256:
        raise IntegrityError(f"policy/{sha256}#1: registered content does not hash to its id")
    _REGISTERED[sha256] = policy_from_bytes(p["content"], p["path"])
    return _REGISTERED[sha256]


def explain(app: LedgerApp, claim_id: str) -> dict[str, Any]:
    sub, history = _submitted(app, claim_id)
    on = date.fromisoformat(sub["claimed_on"])
    policy = registered_policy(app, sub["policy_sha256"])
    records = family_records(app, sub["family_ref"])
    recorded = sub["decision"]
    try:
        _, then, decided = replay(records, on, sub["known_at"], policy)
    except ErasedError as e:
        # The claim keeps its recorded decision; the evidence behind it is gone.
        return {
            "claim_id": claim_id, "family_ref": sub["family_ref"], "route": sub["route"],
            "claimed_on": sub["claimed_on"], "status": _status(history),
            "policy_id": sub["policy_id"], "policy_sha256": sub["policy_sha256"],
            "claimledger_version": sub["claimledger_version"], "amount": sub.get("amount"),
            "decision": recorded, "replay_matches_recorded": None, "erased": str(e),
            "changed_since": [f"cannot replay: {e}"], "history": history,
            "selection_notes": [],
        }
    again = decided.to_dict()
    matches = all(again.get(k) == recorded.get(k) for k in DECISION_FIELDS)
    now = iso_utc(app.settings.clock())
    if any(r["envelope"]["recorded_at"] > sub["known_at"] for _, r in records):
        today = replay(records, on, now, policy)[2].to_dict()
    else:  # nothing about the family was learned since: today's answer is the replay
        today = again
    return {
        "claim_id": claim_id,
        "family_ref": sub["family_ref"],
        "route": sub["route"],
        "claimed_on": sub["claimed_on"],
        "status": _status(history),
        "policy_id": sub["policy_id"],
        "policy_sha256": sub["policy_sha256"],
        "claimledger_version": sub["claimledger_version"],
        "amount": sub.get("amount"),
        "decision": again,
        "replay_matches_recorded": matches,
        "changed_since": diff_decisions(again, today),
        "history": history,
        "selection_notes": list(then.notes),
    }


def diff_decisions(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What a person needs to know about how today's answer differs."""
    changes: list[str] = []
    for key in ("eligible", "claimable", "route"):
        if before.get(key) != after.get(key):
            changes.append(f"{key}: {before.get(key)} at submission, {after.get(key)} today")
    old = {p["problem"]: p for p in before.get("problems", [])}
    for p in after.get("problems", []):
        q = old.get(p["problem"])
        if q is None:
            changes.append(f"{p['problem']}: a problem known today but not at submission")
            continue
        if q.get("met") != p.get("met"):
            changes.append(
                f"{p['problem']}: met {q.get('met')} at submission, {p.get('met')} today"
            )
        qo = {o["id"]: o for o in q.get("outcomes", [])}
        for o in p.get("outcomes", []):
            prev = qo.get(o["id"])
            if prev is not None and prev.get("reason") != o.get("reason"):
                changes.append(f"outcome {o['id']}: {prev.get('reason')} -> {o.get('reason')}")
    if set(before.get("evidence", [])) != set(after.get("evidence", [])):
        added = sorted(set(after.get("evidence", [])) - set(before.get("evidence", [])))
        gone = sorted(set(before.get("evidence", [])) - set(after.get("evidence", [])))
        if added:
            changes.append("evidence known since submission: " + ", ".join(added))
        if gone:
            changes.append("evidence superseded since submission: " + ", ".join(gone))
    return changes
