"""One self-contained HTML page that explains a claim to an auditor, on screen and on A4.

Built from :func:`claims.explain` (the decision replayed as known at submission) and the
family's evidence as known then: the verdict, each problem's outcomes with their reasons, a
timeline (inline SVG: attendance, incidents, employment and care status around attachment
and the review window), the evidence the decision rests on with each record's hash, the
registered policy and the checkpoint that signed the claim. No scripts, fonts, images or
links to anything outside the page, so it can be archived and printed as it is.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..domain.base import iso_utc
from ..domain.claim import Claim
from ..evaluate.service import family_records
from ..evaluate.timeline import select_evidence
from ..ledger.envelope import event_id
from ..policy.dates import months_before
from ..policy.evidence import FamilyEvidence
from ..policy.model import Policy, leaves
from . import claims

if TYPE_CHECKING:
    from ..application import LedgerApp

TYPE_LABEL = {
    "Family.Registered": "identification", "Family.MemberAdded": "member",
    "Family.IndicatorRecorded": "indicator", "Family.Attached": "attachment",
    "Family.AttendanceRecorded": "attendance", "Family.IncidentRecorded": "incident",
    "Family.EmploymentRecorded": "employment", "Family.CareStatusRecorded": "care status",
    "Family.ScoreRecorded": "score", "Family.JudgementRecorded": "judgement",
    "Family.AttestationRecorded": "attestation", "Family.Corrected": "correction",
}
INCIDENT_COLOUR = {
    "proven_offence": "#8b1a1a", "asb_incident": "#d9731a", "asb_intervention": "#b35900",
    "police_callout": "#6a3d9a", "domestic_callout": "#a6367a", "missing_episode": "#1f5fa8",
    "ae_attendance": "#1b7f79",
}
CARE_COLOUR = {"lac": "#7f1d1d", "cp": "#c0392b", "cin": "#e67e22", "early_help": "#e9c46a"}
EMPLOYMENT_COLOUR = {"benefit_claim": "#9aa0a6", "employment": "#2e7d32"}
OTHER_EMPLOYMENT = "#4a78b5"


# --- gathering (reads the ledger) --------------------------------------------------------------
def claim_report(app: LedgerApp, claim_id: str) -> dict[str, Any]:
    """Everything the page shows, as plain data."""
    explained = claims.explain(app, claim_id)
    on = date.fromisoformat(explained["claimed_on"])
    known_at = explained["decision"]["known_at"]
    records = family_records(app, explained["family_ref"])
    evidence = select_evidence(records, as_of=on, known_at=known_at)
    policy = claims.registered_policy(app, explained["policy_sha256"])
    by_id = {}
    for _, rec in records:
        env = rec["envelope"]
        p = rec.get("payload") or {}
        by_id[event_id(env["stream"], env["version"])] = {
            "type": env["type"], "recorded_at": env["recorded_at"], "hash": rec["hash"],
            "summary": _summary(env["type"], p)}
        if env["type"] == "Family.Corrected" and p.get("replacement"):
            repl = dict(p["replacement"])
            by_id[event_id(env["stream"], env["version"])]["summary"] = (
                "corrects " + p["supersedes"] + ": " + _summary(repl.pop("type", ""), repl))
    submitted = app.stream_records(Claim.stream_name(claim_id))[0][1]
    ledger = [rec for _, rec in app.stream_records("ledger/main")]
    checkpoint = None
    position = _position(app, submitted["hash"])
    if position is not None:
        cps = [dict(r["payload"], event=f"{r['envelope']['stream']}#{r['envelope']['version']}")
               for r in ledger if r["envelope"]["type"] == "Ledger.Checkpointed"]
        checkpoint = next((c for c in cps if c["last_position"] >= position), None)
    evidence_rows = [{"event": eid, **by_id.get(eid, {"type": "?", "recorded_at": "",
                                                      "hash": "", "summary": ""})}
                     for eid in explained["decision"].get("evidence", [])]
    return {"explained": explained, "evidence": evidence, "policy": policy,
            "evidence_rows": evidence_rows, "submitted_hash": submitted["hash"],
            "checkpoint": checkpoint, "generated_at": iso_utc(app.settings.clock())}


def _position(app: LedgerApp, event_hash: str) -> int | None:
    """The ledger position of the claim's Submitted event (a topic-filtered read)."""
    from eventsourcing.utils import get_topic

    from .claims import claim_records

    return next((position for position, rec in claim_records(app, [get_topic(Claim.Submitted)])
                 if rec["hash"] == event_hash), None)


def _summary(typ: str, p: dict[str, Any]) -> str:
    """One line a person reads for an evidence record."""
    t = typ.removeprefix("Family.")
    if t == "Registered":
        return f"identified {p.get('identified_on')} under {p.get('policy_id')}"
    if t == "MemberAdded":
        return f"{p.get('member_ref')}: {p.get('role')}, born {p.get('birth_date')}"
    if t == "IndicatorRecorded":
        who = f" ({p['member_ref']})" if p.get("member_ref") else ""
        return (f"{p.get('problem')}: {p.get('indicator')}{who} observed {p.get('observed_on')} "
                f"at {p.get('stage')}")
    if t == "Attached":
        return (f"attached {p.get('attached_on')}, lead {p.get('lead_professional') or '—'}, "
                f"assessment {p.get('assessment_on') or '—'}, plan {p.get('plan_on') or '—'}")
    if t == "AttendanceRecorded":
        return (f"{p.get('member_ref')}: {p.get('term_start')}..{p.get('term_end')} absent "
                f"{p.get('sessions_absent')}/{p.get('sessions_possible')} sessions "
                f"({_pct(p.get('sessions_absent', 0), p.get('sessions_possible', 0))}), "
                f"{p.get('fixed_term_exclusions') or 0} exclusions, {p.get('setting')}")
    if t == "IncidentRecorded":
        serious = ", serious" if p.get("serious") else ""
        return f"{p.get('member_ref')}: {p.get('kind')} on {p.get('occurred_on')}{serious}"
    if t == "EmploymentRecorded":
        extra = f" ({p['benefit']})" if p.get("benefit") else ""
        hours = f", {p['hours_per_week']} h/week" if p.get("hours_per_week") else ""
        return (f"{p.get('member_ref')}: {p.get('kind')}{extra} {p.get('start_on')}.."
                f"{p.get('end_on') or 'open'}{hours}")
    if t == "CareStatusRecorded":
        return (f"{p.get('member_ref')}: {p.get('status')} {p.get('start_on')}.."
                f"{p.get('end_on') or 'open'}")
    if t == "ScoreRecorded":
        return (f"{p.get('member_ref')}: {p.get('instrument')} {p.get('score')} on "
                f"{p.get('assessed_on')}")
    if t == "JudgementRecorded":
        flags = ", ".join(f"{k.replace('_', ' ')} {'yes' if p.get(k) else 'no'}"
                          for k in ("progress", "sustained", "intensity_reduced"))
        return f"{p.get('practitioner')} on {p.get('judged_on')} ({p.get('problem')}): {flags}"
    if t == "AttestationRecorded":
        return (f"{p.get('practitioner')} attests {p.get('outcome')} on {p.get('attested_on')}"
                f" ({p.get('evidence') or 'no reference'})")
    return ", ".join(f"{k} {v}" for k, v in sorted(p.items())
                     if k not in ("file_sha256", "row", "row_key"))


def _version(eid: str) -> int:
    tail = eid.rsplit("#", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _pct(part: int, whole: int) -> str:
    """A percentage to one decimal place, integer arithmetic, half up."""
    if not whole:
        return "n/a"
    tenths = (part * 2000 + whole) // (2 * whole)
    return f"{tenths // 10}.{tenths % 10}%"


# --- the timeline --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    start: date  # exclusive, as every measure counts
    end: date
    label: str


def review_windows(policy: Policy, decision: dict[str, Any], evidence: FamilyEvidence,
                   as_of: date) -> tuple[Window | None, Window | None]:
    """The widest window the decided outcomes look back over from the review date, and the
    widest baseline window before attachment (incident reductions), from the policy's own
    parameters in force on the review date."""
    starts: list[date] = []
    baseline: list[int] = []
    for problem in decision.get("problems", []):
        for o in problem.get("outcomes", []):
            outcome = policy.outcome(o["id"])
            if outcome is None:
                continue
            for leaf in leaves(outcome.measure):
                params = leaf.resolved(as_of)
                for name in ("months", "window_months", "within_months"):
                    if isinstance(params.get(name), int):
                        starts.append(months_before(as_of, params[name]))
                if isinstance(params.get("baseline_months"), int):
                    baseline.append(params["baseline_months"])
                if leaf.kind in ("attendance", "exclusions") and isinstance(
                        params.get("terms"), int):
                    by_child: dict[str, list[date]] = {}
                    for t in evidence.attendance:
                        if t.term_end <= as_of:
                            by_child.setdefault(t.member_ref, []).append(t.term_start)
                    for term_starts in by_child.values():
                        latest = sorted(term_starts)[-params["terms"]:]
                        starts.append(latest[0] - timedelta(days=1))
    review = Window(min(starts), as_of, "review window") if starts else None
    base = None
    if baseline and evidence.attachment is not None:
        attached = evidence.attachment.attached_on
        base = Window(months_before(attached, max(baseline)), attached, "baseline")
    return review, base


class _Scale:
    X0, X1 = 200, 990

    def __init__(self, start: date, end: date):
        self.start, self.end = start, end
        self.days = max((end - start).days, 1)

    def x(self, d: date) -> int:
        d = min(max(d, self.start), self.end)
        return self.X0 + (d - self.start).days * (self.X1 - self.X0) // self.days


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def timeline_svg(evidence: FamilyEvidence, as_of: date, review: Window | None,
                 baseline: Window | None, used: set[str]) -> str:
    """An inline SVG of the family's records around attachment and the review window."""
    anchors = [as_of] + [d for d in (
        evidence.identified_on, evidence.attachment.attached_on if evidence.attachment else None,
        review.start if review else None, baseline.start if baseline else None) if d]
    records = ([t.term_start for t in evidence.attendance]
               + [i.occurred_on for i in evidence.incidents]
               + [s.start_on for s in evidence.employment]
               + [s.start_on for s in evidence.care_status])
    # around attachment and the review window: six months before the earliest of them, or
    # from the first record if that is later; older records are cut at the left edge
    first = max(min(records + anchors), months_before(min(anchors), 6))
    start = date(first.year, first.month, 1)
    end_month = as_of.month % 12 + 1
    end = date(as_of.year + (as_of.month == 12), end_month, 1)
    sc = _Scale(start, end)

    lanes: list[tuple[str, list[str]]] = []
    kids = [m.ref for m in evidence.members if m.role == "child"]
    refs = [m.ref for m in evidence.members]

    def bar(a: date, b: date | None, y: int, fill: str, title: str, label: str = "",
            outline: bool = False, light: bool = False) -> str:
        x1, x2 = sc.x(a), sc.x(b or sc.end)
        w = max(x2 - x1, 2)
        stroke = ' stroke="#111" stroke-width="1.5"' if outline else ""
        text = ""
        if label and w > 7 * len(label):
            colour = "#111" if light else "#fff"
            text = (f'<text x="{x1 + w // 2}" y="{y + 17}" text-anchor="middle" '
                    f'class="in" fill="{colour}">{_e(label)}</text>')
        return (f'<rect x="{x1}" y="{y + 4}" width="{w}" height="18" rx="2" fill="{fill}"'
                f'{stroke}><title>{_e(title)}</title></rect>{text}')

    for ref in kids:
        terms = [t for t in evidence.attendance if t.member_ref == ref]
        if terms:
            items = []
            for t in sorted(terms, key=lambda t: t.term_start):
                share = t.sessions_absent * 100 // max(t.sessions_possible, 1)
                shade = max(235 - share * 6, 60)
                fill = f"rgb({shade},{shade},{min(shade + 20, 255)})"
                pct = _pct(t.sessions_absent, t.sessions_possible)
                items.append(("bar", t.term_start, t.term_end, fill,
                              f"{ref} {t.term_start}..{t.term_end}: absent {pct}, "
                              f"{t.fixed_term_exclusions} exclusions ({t.event_id})",
                              pct, t.event_id in used, shade > 150))
            lanes.append((f"Attendance · {ref}", items))  # type: ignore[arg-type]
    for ref in refs:
        incs = [i for i in evidence.incidents if i.member_ref == ref]
        if incs:
            lanes.append((f"Incidents · {ref}", [("dot", i) for i in incs]))  # type: ignore[misc]
    for ref in refs:
        spells = [s for s in evidence.employment if s.member_ref == ref]
        if spells:
            lanes.append((f"Employment · {ref}", [  # type: ignore[arg-type]
                ("bar", s.start_on, s.end_on,
                 EMPLOYMENT_COLOUR.get(s.kind, OTHER_EMPLOYMENT),
                 f"{ref}: {s.kind}{' ' + s.benefit if s.benefit else ''} {s.start_on}.."
                 f"{s.end_on or 'open'} ({s.event_id})",
                 s.benefit or s.kind.replace("_", " "), s.event_id in used, False)
                for s in sorted(spells, key=lambda s: s.start_on)]))
    for ref in refs:
        spells = [s for s in evidence.care_status if s.member_ref == ref]
        if spells:
            lanes.append((f"Care status · {ref}", [  # type: ignore[arg-type]
                ("bar", s.start_on, s.end_on, CARE_COLOUR.get(s.status, "#888"),
                 f"{ref}: {s.status} {s.start_on}..{s.end_on or 'open'} ({s.event_id})",
                 s.status.replace("_", " ").upper(), s.event_id in used,
                 s.status == "early_help")
                for s in sorted(spells, key=lambda s: s.start_on)]))
    marks = ([("tri", i.observed_on, f"indicator {i.problem}/{i.indicator} ({i.stage})")
              for i in evidence.indicators]
             + [("dia", j.judged_on, f"judgement by {j.practitioner}") for j in
                evidence.judgements]
             + [("sq", a.attested_on, f"attestation {a.outcome} by {a.practitioner}")
                for a in evidence.attestations])
    if marks:
        lanes.append(("Practitioner records", marks))  # type: ignore[arg-type]

    windows = [w for w in (review, baseline) if w is not None]
    for w in reversed(windows):
        lanes.insert(0, (w.label.capitalize(), [  # type: ignore[arg-type]
            ("window", w, "#c9d3de" if w is baseline else "#9cc3ea")]))
    top, lane_h = 58, 28
    height = top + lane_h * max(len(lanes), 1) + 64
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1020 {height}" '
           f'role="img" aria-labelledby="tl-title" class="timeline">',
           '<title id="tl-title">Timeline of the family\'s records</title>',
           f'<rect x="0" y="0" width="1020" height="{height}" fill="#fff"/>']
    bottom = top + lane_h * max(len(lanes), 1)
    if review is not None:
        x1, x2 = sc.x(review.start), sc.x(review.end)
        shade_top = top + lane_h * len(windows)
        out.append(f'<rect x="{x1}" y="{shade_top}" width="{max(x2 - x1, 1)}" '
                   f'height="{bottom - shade_top}" fill="#eef5fc"/>')
    # month grid, and labels every quarter (every year on a long view)
    months = (end.year - start.year) * 12 + end.month - start.month
    label_every, line_every = (3, 1) if months <= 40 else (12, 3)
    d = start
    while d <= end:
        x = sc.x(d)
        major = (d.month - 1) % label_every == 0
        if major or (d.month - 1) % line_every == 0:
            out.append(f'<line x1="{x}" y1="{top - 6}" x2="{x}" y2="{bottom}" '
                       f'stroke="{"#c8ced6" if major else "#eef0f3"}" stroke-width="1"/>')
        if major:
            text = f"{d.year}-{d.month:02d}" if label_every < 12 else str(d.year)
            out.append(f'<text x="{x}" y="{bottom + 14}" text-anchor="middle" class="small">'
                       f'{text}</text>')
        d = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    if start > min(records + anchors):
        out.append(f'<text x="{sc.X0}" y="{bottom + 30}" class="small">◂ records before '
                   f'{start.isoformat()} are cut at the left edge</text>')
    for i, (label, items) in enumerate(lanes):
        y = top + i * lane_h
        out.append(f'<text x="6" y="{y + 18}" class="lane">{_e(label)}</text>')
        out.append(f'<line x1="{sc.X0}" y1="{y + lane_h - 1}" x2="{sc.X1}" y2="{y + lane_h - 1}" '
                   'stroke="#f0f2f5"/>')
        for item in items:
            kind = item[0]
            if kind == "bar":
                _, a, b, fill, title, lab, outline, light = item  # type: ignore[misc]
                out.append(bar(a, b, y, fill, title, lab, outline, light))
            elif kind == "window":
                _, w, fill = item  # type: ignore[misc]
                x1, x2 = sc.x(w.start + timedelta(days=1)), sc.x(w.end)
                text = f"{(w.start + timedelta(days=1)).isoformat()}..{w.end.isoformat()}"
                out.append(f'<rect x="{x1}" y="{y + 4}" width="{max(x2 - x1, 2)}" height="18" '
                           f'rx="2" fill="{fill}"><title>{_e(w.label)} {text}</title></rect>')
                if x2 - x1 > 7 * len(text):
                    out.append(f'<text x="{(x1 + x2) // 2}" y="{y + 17}" text-anchor="middle" '
                               f'class="in">{text}</text>')
                elif x1 - sc.X0 > 7 * len(text):
                    out.append(f'<text x="{x1 - 4}" y="{y + 17}" text-anchor="end" '
                               f'class="in">{text}</text>')
                else:
                    out.append(f'<text x="{x2 + 4}" y="{y + 17}" class="in">{text}</text>')
            elif kind == "dot":
                inc = item[1]  # type: ignore[misc]
                x = sc.x(inc.occurred_on)
                colour = INCIDENT_COLOUR.get(inc.kind, "#555")
                ring = ' stroke="#111" stroke-width="1.5"' if inc.event_id in used else ""
                r = 6 if inc.serious else 4
                out.append(f'<circle cx="{x}" cy="{y + 13}" r="{r}" fill="{colour}"{ring}>'
                           f'<title>{_e(inc.kind)} on {inc.occurred_on}'
                           f'{" (serious)" if inc.serious else ""} ({_e(inc.event_id)})</title>'
                           '</circle>')
            else:
                _, day, title = item  # type: ignore[misc]
                x = sc.x(day)
                shape = {"tri": f'<path d="M{x} {y + 6} L{x + 6} {y + 19} L{x - 6} {y + 19} Z"',
                         "dia": f'<path d="M{x} {y + 6} L{x + 6} {y + 13} L{x} {y + 20} '
                                f'L{x - 6} {y + 13} Z"',
                         "sq": f'<rect x="{x - 5}" y="{y + 8}" width="10" height="10"'}[kind]
                out.append(f'{shape} fill="#37474f"><title>{_e(title)} on {day}</title>'
                           f'{"</path>" if kind != "sq" else "</rect>"}')
    if not lanes:
        out.append(f'<text x="{sc.X0}" y="{top + 14}" class="small">no dated records</text>')
    # the key dates
    keys = []
    if evidence.identified_on:
        keys.append((evidence.identified_on, "identified", "#607d8b", "4 3"))
    if evidence.attachment is not None:
        keys.append((evidence.attachment.attached_on, "attached", "#1f5fa8", ""))
    keys.append((as_of, "review date (claimed on)", "#111", ""))
    for n, (day, label, colour, dash) in enumerate(keys):
        x = sc.x(day)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{x}" y1="{top - 10}" x2="{x}" y2="{bottom}" stroke="{colour}" '
                   f'stroke-width="2"{dash_attr}/>')
        anchor = "end" if x > 880 else "start"
        dx = -4 if anchor == "end" else 4
        out.append(f'<text x="{x + dx}" y="{14 + 15 * n}" text-anchor="{anchor}" '
                   f'class="key" fill="{colour}">{_e(label)} {day.isoformat()}</text>')
    # legend
    ly = bottom + 52
    legend = []
    legend += [(c, k.replace("_", " ")) for k, c in INCIDENT_COLOUR.items()
               if any(i.kind == k for i in evidence.incidents)]
    legend += [(c, k.replace("_", " ")) for k, c in CARE_COLOUR.items()
               if any(s.status == k for s in evidence.care_status)]
    x = sc.X0
    for colour, label in legend:
        out.append(f'<rect x="{x}" y="{ly - 9}" width="10" height="10" fill="{colour}" '
                   'stroke="#999" stroke-width="0.5"/>')
        out.append(f'<text x="{x + 14}" y="{ly}" class="small">{_e(label)}</text>')
        x += 24 + 6 * len(label)
    out.append(f'<text x="{sc.X1}" y="{ly}" text-anchor="end" class="small">outlined: a record '
               'the decision rests on · darker attendance: more absence</text>')
    out.append("</svg>")
    return "\n".join(out)


# --- the page ------------------------------------------------------------------------------------
CSS = """
:root { --ink:#1b1f24; --muted:#5b6570; --rule:#d5dae0; --ok:#1e6b34; --okbg:#e6f3ea;
  --bad:#9b1c1c; --badbg:#fbe9e9; --accent:#1f4e79; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #f4f5f7;
  font: 14px/1.45 "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif; }
main { max-width: 1100px; margin: 0 auto; background: #fff; padding: 28px 36px 36px; }
header.top { display: flex; justify-content: space-between; align-items: baseline;
  border-bottom: 3px solid var(--accent); padding-bottom: 8px; margin-bottom: 16px; }
header.top .brand { font-weight: 700; color: var(--accent); letter-spacing: .04em;
  text-transform: uppercase; font-size: 12px; }
header.top .gen { color: var(--muted); font-size: 12px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 26px 0 8px; padding-bottom: 4px; border-bottom: 1px solid
  var(--rule); color: var(--accent); }
.sub { color: var(--muted); margin: 0 0 14px; }
.verdict { display: flex; gap: 18px; align-items: center; padding: 14px 18px;
  border-radius: 6px; border: 1px solid; margin: 8px 0 16px; }
.verdict.ok { background: var(--okbg); border-color: #9fd0ad; }
.verdict.bad { background: var(--badbg); border-color: #e6a5a5; }
.verdict .big { font-size: 22px; font-weight: 700; }
.verdict.ok .big { color: var(--ok); } .verdict.bad .big { color: var(--bad); }
.verdict .facts { color: var(--ink); }
.facts span { display: inline-block; margin-right: 16px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px;
  border-bottom: 1px solid var(--rule); }
th { background: #f0f3f7; font-size: 12px; text-transform: uppercase; letter-spacing: .03em;
  color: var(--muted); }
table.kv th { width: 200px; text-transform: none; font-size: 13px; letter-spacing: 0;
  background: #f7f8fa; }
.mono { font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace;
  font-size: 11.5px; word-break: break-all; }
.nw { white-space: nowrap; word-break: normal; }
td.hash { width: 34%; }
.met { color: var(--ok); font-weight: 700; white-space: nowrap; }
.notmet { color: var(--bad); font-weight: 700; white-space: nowrap; }
.problem { border: 1px solid var(--rule); border-radius: 6px; margin: 10px 0;
  page-break-inside: avoid; break-inside: avoid; }
.problem > .head { display: flex; justify-content: space-between; padding: 8px 12px;
  background: #f7f8fa; border-bottom: 1px solid var(--rule); border-radius: 6px 6px 0 0; }
.problem table { margin: 0; }
.problem td.id { width: 70px; white-space: nowrap; }
.problem td.st { width: 80px; }
ul.reasons { margin: 4px 0 0 18px; padding: 0; }
.note { color: var(--muted); font-size: 12.5px; }
svg.timeline { width: 100%; height: auto; border: 1px solid var(--rule); border-radius: 4px; }
svg .lane { font-size: 13px; fill: #222; }
svg .small { font-size: 12px; fill: #555; }
svg .in { font-size: 11px; }
svg .key { font-size: 13px; font-weight: 700; }
tr { page-break-inside: avoid; break-inside: avoid; }
footer { margin-top: 28px; padding-top: 8px; border-top: 1px solid var(--rule);
  color: var(--muted); font-size: 11.5px; }
@page { size: A4; margin: 14mm 12mm 16mm; }
@media print {
  body { background: #fff; font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  h2 { page-break-after: avoid; break-after: avoid; }
  section.timeline-section { page-break-inside: avoid; break-inside: avoid; }
  .verdict, th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  svg.timeline { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def _yes(flag: Any, yes: str = "met", no: str = "not met") -> str:
    return f'<span class="met">✓ {yes}</span>' if flag else f'<span class="notmet">✗ {no}</span>'


def render_html(data: dict[str, Any]) -> str:
    """The page, from :func:`claim_report`'s data. Pure."""
    ex = data["explained"]
    dec = ex["decision"]
    policy: Policy = data["policy"]
    evidence: FamilyEvidence = data["evidence"]
    as_of = date.fromisoformat(ex["claimed_on"])
    claimable = bool(dec.get("claimable"))
    rows = data["evidence_rows"]
    used = {r["event"] for r in rows}
    review, baseline = review_windows(policy, dec, evidence, as_of)
    cp = data.get("checkpoint")
    p: list[str] = []
    p.append("<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">")
    p.append(f"<title>Claim {_e(ex['claim_id'])}: audit report</title>")
    p.append('<meta name="viewport" content="width=device-width, initial-scale=1">')
    p.append(f"<style>{CSS}</style>\n</head>\n<body>\n<main>")
    p.append('<header class="top"><span class="brand">claimledger · claim audit report</span>'
             f'<span class="gen">generated {_e(data["generated_at"])} by claimledger '
             f'{_e(__version__)}</span></header>')
    p.append(f'<h1>Claim {_e(ex["claim_id"])}</h1>')
    p.append(f'<p class="sub">Family {_e(ex["family_ref"])} · {_e(policy.title)}</p>')
    verdict = ("CLAIMABLE" if claimable else "NOT CLAIMABLE")
    route = dec.get("route")
    p.append(f'<div class="verdict {"ok" if claimable else "bad"}" id="verdict">'
             f'<div class="big">{verdict}{" · " + _e(route) + " route" if route else ""}</div>'
             '<div class="facts">'
             f'<span>Eligible: <b>{"yes" if dec.get("eligible") else "no"}</b></span>'
             f'<span>Status: <b>{_e(ex["status"])}</b></span>'
             f'<span>Replay: <b>{"matches the recorded decision" if ex["replay_matches_recorded"] else "DIFFERS from the recorded decision"}</b></span>'  # noqa: E501
             "</div></div>")
    pay = dec.get("payment") or {}
    p.append('<table class="kv">')
    for k, v in (
        ("Claimed on (review date)", ex["claimed_on"]),
        ("As known at (submission)", dec.get("known_at")),
        ("Amount", _amount(ex.get("amount"), pay)),
        ("Policy", f"{ex['policy_id']}: {policy.title}"),
        ("claimledger version at submission", ex["claimledger_version"]),
    ):
        p.append(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>")
    p.append("</table>")
    if dec.get("reasons"):
        p.append("<h2>Reasons</h2><ul class=\"reasons\">")
        p.extend(f"<li>{_e(r)}</li>" for r in dec["reasons"])
        p.append("</ul>")

    problems = dec.get("problems", [])
    met = sum(1 for x in problems if x.get("met"))
    p.append(f'<h2 id="problems">Problems and outcomes ({met} of {len(problems)} met)</h2>')
    for prob in problems:
        req = "required" if prob.get("required") else "not required for the claim"
        p.append('<div class="problem"><div class="head">'
                 f'<span><b>{_e(prob.get("title") or prob["problem"])}</b> '
                 f'<span class="note">({_e(prob["problem"])}, {_e(prob.get("stage"))} stage, '
                 f'{req}; indicators: {_e(", ".join(prob.get("indicators", [])) or "none")})'
                 f'</span></span>{_yes(prob.get("met"))}</div>')
        p.append("<table><tr><th>Outcome</th><th>Definition</th><th>Result</th>"
                 "<th>Reason</th></tr>")
        for o in prob.get("outcomes", []):
            p.append(f'<tr><td class="id">{_e(o["id"])}</td><td>{_e(o.get("title", ""))}</td>'
                     f'<td class="st">{_yes(o.get("met"))}</td><td>{_e(o.get("reason", ""))}'
                     "</td></tr>")
        if not prob.get("outcomes"):
            p.append(f'<tr><td colspan="4" class="note">{_e(prob.get("reason", ""))}</td></tr>')
        p.append("</table></div>")
    emp = dec.get("employment_route")
    if emp:
        p.append(f'<p><b>Employment route:</b> {_yes(emp.get("met"))} {_e(emp.get("reason"))}'
                 "</p>")

    p.append('<section class="timeline-section"><h2>Timeline</h2>')
    p.append(timeline_svg(evidence, as_of, review, baseline, used))
    p.append('<p class="note">Each row is one member\'s records as the ledger knew them at '
             "submission. Shaded: the longest window the policy's outcomes look back over from "
             "the review date, and the baseline before attachment. Hover a mark for its record."
             "</p></section>")

    p.append(f'<h2 id="evidence">Evidence ({len(rows)} records)</h2>')
    p.append('<p class="note">The records the decision rests on. Each hash is the SHA-256 of '
             "the record's envelope; <code>claimledger bundle</code> carries the records with "
             "inclusion proofs so anyone can check them without the database.</p>")
    p.append("<table><tr><th>Record</th><th>Kind</th><th>What it says</th>"
             "<th>Recorded</th><th>Hash</th></tr>")
    kinds = list(TYPE_LABEL)
    for r in sorted(rows, key=lambda r: (kinds.index(r["type"]) if r["type"] in kinds
                                         else len(kinds), _version(r["event"]))):
        p.append(f'<tr><td class="mono nw">{_e(r["event"])}</td>'
                 f'<td>{_e(TYPE_LABEL.get(r["type"], r["type"]))}</td>'
                 f'<td>{_e(r["summary"])}</td>'
                 f'<td class="mono nw">{_e(r["recorded_at"][:10])}</td>'
                 f'<td class="mono hash">{_e(r["hash"])}</td></tr>')
    p.append("</table>")
    if ex.get("selection_notes"):
        p.append("<p class=\"note\">Selection notes: " +
                 "; ".join(_e(n) for n in ex["selection_notes"]) + "</p>")

    p.append('<h2 id="policy">Policy</h2><table class="kv">')
    src = policy.source
    for k, v in (
        ("Id", policy.id), ("Title", policy.title), ("Authority", policy.authority),
        ("In force", policy.period()),
        ("Source document", f"{src.title} ({src.authority}, {src.date}; {src.document})"),
        ("Registered SHA-256", ex["policy_sha256"]),
    ):
        cls = ' class="mono"' if k == "Registered SHA-256" else ""
        p.append(f"<tr><th>{_e(k)}</th><td{cls}>{_e(v)}</td></tr>")
    p.append("</table>")

    p.append('<h2 id="checkpoint">Signed checkpoint</h2>')
    if cp:
        p.append('<table class="kv">')
        for k, v in (("Checkpoint event", cp["event"]),
                     ("Events covered (tree size)", cp["tree_size"]),
                     ("Merkle root", cp["root"]), ("Signed at", cp["signed_at"]),
                     ("Signing key id", cp["key_id"]),
                     ("Claim event hash", data["submitted_hash"])):
            cls = ' class="mono"' if k in ("Merkle root", "Signing key id",
                                            "Claim event hash") else ""
            p.append(f"<tr><th>{_e(k)}</th><td{cls}>{_e(v)}</td></tr>")
        p.append("</table><p class=\"note\">The first checkpoint that covers the claim (sealed "
                 "at submission): an Ed25519 signature over this RFC 9162 Merkle root commits "
                 "the authority to every record above.</p>")
    else:
        p.append('<p class="notmet">No checkpoint covers this claim yet.</p>')

    if ex.get("changed_since"):
        p.append("<h2>Changed since submission</h2><ul class=\"reasons\">")
        p.extend(f"<li>{_e(c)}</li>" for c in ex["changed_since"])
        p.append("</ul>")
    p.append("<h2>Claim history</h2><table><tr><th>Recorded</th><th>Event</th><th>By</th>"
             "<th>Detail</th></tr>")
    for h in ex.get("history", []):
        detail = h.get("note") or h.get("reason") or h.get("result") or ""
        if h["type"] == "Claim.SpotChecked":
            detail = f"{h.get('result')}: {h.get('reason')}" + (
                f" (sample {h['sample_id']})" if h.get("sample_id") else "")
        p.append(f'<tr><td class="mono">{_e(h["recorded_at"][:19])}</td>'
                 f'<td>{_e(h["type"])}</td><td>{_e(h["actor"])}</td><td>{_e(detail)}</td></tr>')
    p.append("</table>")
    p.append(f'<footer>Claim {_e(ex["claim_id"])} · replayed as known at '
             f'{_e(dec.get("known_at"))} with the registered policy bytes · this page is '
             "self-contained: no scripts or external resources.</footer>")
    p.append("</main>\n</body>\n</html>\n")
    return "\n".join(p)


def _amount(amount: str | None, pay: dict[str, Any]) -> str:
    """The claim's amount with the rate it came from and the date that picked the rate."""
    if not amount:
        return "n/a (the policy states no payment for this route)"
    if not pay:
        return f"£{amount}"
    basis = ("rate by the attachment date" if pay.get("basis") == "attachment_date"
             else "rate by the claim date")
    note = f"; {pay['note']}" if pay.get("note") else ""
    return f"£{amount} ({pay.get('item')}, {basis}; {pay.get('section')}{note})"


def write_report(app: LedgerApp, claim_id: str, out: Any) -> dict[str, Any]:
    data = claim_report(app, claim_id)
    page = render_html(data)
    out.write_text(page, encoding="utf-8")
    dec = data["explained"]["decision"]
    return {"claim_id": claim_id, "file": str(out), "bytes": len(page.encode("utf-8")),
            "claimable": dec.get("claimable"), "route": dec.get("route"),
            "problems": len(dec.get("problems", [])), "evidence": len(data["evidence_rows"])}
