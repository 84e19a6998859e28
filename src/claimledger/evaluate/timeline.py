"""Bitemporal selection: which of a family's events count for a question.

Two times, kept apart everywhere:
- transaction time, ``known_at``: only events the ledger had recorded at or before it count
  (so a late-arriving data match changes today's answer but not a past claim's);
- valid time, ``as_of``: records dated after it are left out, and measures look back from it.

Corrections: a ``Family.Corrected`` event known at ``known_at`` removes the event it
supersedes; its replacement (if any) takes the superseded record's place under the
correction's own id, and the selection notes say so. Pure: records in, evidence out.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from ..errors import ErasedError, EvaluationError, IntegrityError
from ..ledger.envelope import event_id
from ..policy import evidence as ev

Record = tuple[str, dict[str, Any]]  # (topic, stored record)


def _d(value: str | None) -> date | None:
    return None if value in (None, "") else date.fromisoformat(value)  # type: ignore[arg-type]


def select_evidence(records: Iterable[Record], *, as_of: date, known_at: str) -> ev.FamilyEvidence:
    """Build the family's evidence from its stream, as known at ``known_at`` (ISO UTC)."""
    records = list(records)
    for _, rec in records:  # the type is read from the hashed envelope, never the topic
        if rec["envelope"]["type"] == "Family.Erased":
            env = rec["envelope"]
            raise ErasedError(
                f"{env['stream']}: personal data erased at {env['recorded_at']} by "
                f"{env['actor']} ({(rec.get('payload') or {}).get('reason', 'no reason')}); "
                "nothing to evaluate"
            )
    live: dict[str, tuple[str, dict[str, Any], str, str]] = {}  # id -> (type, payload, id, hash)
    order: list[str] = []
    notes: list[str] = []
    stream = ""
    for _topic, rec in records:
        env = rec["envelope"]
        if env["recorded_at"] > known_at:
            break  # a stream's events are in recorded order
        stream = env["stream"]
        eid = event_id(stream, env["version"])
        typ = env["type"]
        payload = rec.get("payload")
        if payload is None and rec.get("erased"):
            raise IntegrityError(
                f"{eid}: the family's data key is missing but no Family.Erased event records "
                "an erasure (it was deleted outside claimledger); run `claimledger verify`")
        if payload is None:
            raise ErasedError(f"{eid}: payload is not readable (erased or encrypted)")
        if typ == "Family.Corrected":
            old = payload["supersedes"]
            if old not in live:
                raise EvaluationError(f"{eid} supersedes {old}, which is not a live event")
            del live[old]
            repl = payload.get("replacement")
            if repl is None:
                notes.append(f"{old} retracted by {eid}: {payload['reason']}")
            else:
                repl = dict(repl)
                rtype = repl.pop("type")
                live[eid] = (rtype, repl, eid, rec["hash"])
                order.append(eid)
                notes.append(f"{old} superseded by {eid}: {payload['reason']}")
            continue
        live[eid] = (typ, payload, eid, rec["hash"])
        order.append(eid)
    if not stream:
        raise EvaluationError(f"no events known at {known_at}")
    return _evidence([live[i] for i in order if i in live], as_of, notes)


def _evidence(
    items: list[tuple[str, dict[str, Any], str, str]], as_of: date, notes: list[str]
) -> ev.FamilyEvidence:
    out: dict[str, list[Any]] = {k: [] for k in (
        "members", "indicators", "attendance", "incidents", "employment", "care_status",
        "scores", "judgements", "attestations")}
    reg: dict[str, Any] | None = None
    attachment: ev.Attachment | None = None
    for typ, p, eid, h in items:
        ids = {"event_id": eid, "event_hash": h}
        if typ == "Family.Registered":
            reg = p
        elif typ == "Family.MemberAdded":
            out["members"].append(ev.Member(p["member_ref"], p["role"], _d(p["birth_date"]), **ids))
        elif typ == "Family.IndicatorRecorded":
            day = _d(p["observed_on"])
            if day <= as_of:
                out["indicators"].append(ev.Indicator(
                    p["problem"], p["indicator"], p.get("member_ref"), day, p["stage"],
                    p.get("source") or "", **ids))
        elif typ == "Family.Attached":
            day = _d(p["attached_on"])
            if day <= as_of:
                attachment = ev.Attachment(
                    day, p.get("lead_professional"), _d(p.get("assessment_on")),
                    _d(p.get("plan_on")), **ids)
        elif typ == "Family.AttendanceRecorded":
            if _d(p["term_end"]) <= as_of:
                out["attendance"].append(ev.AttendanceTerm(
                    p["member_ref"], _d(p["term_start"]), _d(p["term_end"]),
                    p["sessions_possible"], p["sessions_absent"], p.get("unauthorised_absent") or 0,
                    p.get("fixed_term_exclusions") or 0, bool(p.get("permanent_exclusion")),
                    p.get("setting") or "school", p.get("source") or "", **ids))
        elif typ == "Family.IncidentRecorded":
            day = _d(p["occurred_on"])
            if day <= as_of:
                out["incidents"].append(ev.Incident(
                    p["member_ref"], day, p["kind"], bool(p.get("serious")),
                    p.get("source") or "", **ids))
        elif typ == "Family.EmploymentRecorded":
            start = _d(p["start_on"])
            if start <= as_of:
                out["employment"].append(ev.EmploymentSpell(
                    p["member_ref"], p["kind"], start, _d(p.get("end_on")), p.get("benefit"),
                    p.get("hours_per_week"), p.get("source") or "", **ids))
        elif typ == "Family.CareStatusRecorded":
            start = _d(p["start_on"])
            if start <= as_of:
                out["care_status"].append(ev.CareStatus(
                    p["member_ref"], p["status"], start, _d(p.get("end_on")),
                    p.get("source") or "", **ids))
        elif typ == "Family.ScoreRecorded":
            day = _d(p["assessed_on"])
            if day <= as_of:
                out["scores"].append(ev.Score(
                    p["member_ref"], p["instrument"], day, p["score"], p.get("assessor") or "",
                    **ids))
        elif typ == "Family.JudgementRecorded":
            day = _d(p["judged_on"])
            if day <= as_of:
                out["judgements"].append(ev.Judgement(
                    day, p["practitioner"], p["problem"], p["progress"], p["sustained"],
                    p["intensity_reduced"], p.get("note") or "", **ids))
        elif typ == "Family.AttestationRecorded":
            day = _d(p["attested_on"])
            if day <= as_of:
                out["attestations"].append(ev.Attestation(
                    p.get("member_ref"), p["outcome"], day, p["practitioner"],
                    p.get("evidence") or "", **ids))
    if reg is None:
        raise EvaluationError("the family's registration is not among the known events")
    return ev.FamilyEvidence(
        family_ref=reg["family_ref"], authority=reg["authority"], policy_id=reg["policy_id"],
        identified_on=_d(reg["identified_on"]), attachment=attachment, notes=tuple(notes),
        **{k: tuple(v) for k, v in out.items()},
    )
