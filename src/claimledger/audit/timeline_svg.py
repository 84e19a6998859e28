"""The timeline of a family's records around attachment and the review window, as inline SVG,
with an HTML legend for its marks.

One lane per member and kind of record (school absence per term, incidents, employment and
benefit spells, care status), a lane of practitioner records (indicators, judgements,
attestations), the review window and the baseline the policy's outcomes look back over, and
lines at identification, attachment and the review date. Records the decision rests on are
outlined. Pure: built from the evidence as the decision saw it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ..policy.dates import months_before
from ..policy.evidence import FamilyEvidence
from ..policy.model import Policy, leaves
from .report_style import e as _e

INCIDENT_COLOUR = {
    "proven_offence": "#8b1a1a", "asb_incident": "#d9731a", "asb_intervention": "#b35900",
    "police_callout": "#6a3d9a", "domestic_callout": "#a6367a", "missing_episode": "#1f5fa8",
    "ae_attendance": "#1b7f79",
}
CARE_COLOUR = {"lac": "#7f1d1d", "cp": "#c0392b", "cin": "#e67e22", "early_help": "#e9c46a"}
EMPLOYMENT_COLOUR = {"benefit_claim": "#9aa0a6", "employment": "#2e7d32"}
OTHER_EMPLOYMENT = "#4a78b5"
CARE_NAME = {"lac": "looked after", "cp": "child protection", "cin": "child in need",
             "early_help": "early help"}


def percent(part: int, whole: int) -> str:
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
                pct = percent(t.sessions_absent, t.sessions_possible)
                items.append(("bar", t.term_start, t.term_end, fill,
                              f"{ref} {t.term_start}..{t.term_end}: absent {pct}, "
                              f"{t.fixed_term_exclusions} exclusions ({t.event_id})",
                              f"{pct} absent", t.event_id in used, shade > 150))
            lanes.append((f"Absence · {ref}", items))  # type: ignore[arg-type]
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
    height = top + lane_h * max(len(lanes), 1) + 38
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
    out.append("</svg>")
    return "\n".join(out)




def _swatch(colour: str, shape: str = "rect", outline: bool = False) -> str:
    """A small inline SVG of one mark, for the legend."""
    stroke = ' stroke="#111" stroke-width="1.5"' if outline else ' stroke="#999" stroke-width=".5"'
    body = {
        "rect": f'<rect x="1" y="2" width="16" height="10" rx="2" fill="{colour}"{stroke}/>',
        "dot": f'<circle cx="7" cy="7" r="4" fill="{colour}"/>',
        "big": f'<circle cx="7" cy="7" r="6" fill="{colour}"/>',
        "tri": f'<path d="M7 1 L13 13 L1 13 Z" fill="{colour}"/>',
        "dia": f'<path d="M7 0 L13 7 L7 14 L1 7 Z" fill="{colour}"/>',
        "sq": f'<rect x="2" y="2" width="10" height="10" fill="{colour}"/>',
        "solid": f'<line x1="8" y1="0" x2="8" y2="14" stroke="{colour}" stroke-width="2"/>',
        "dash": f'<line x1="8" y1="0" x2="8" y2="14" stroke="{colour}" stroke-width="2" '
                'stroke-dasharray="4 3"/>',
    }[shape]
    return f'<svg width="18" height="14" viewBox="0 0 18 14" aria-hidden="true">{body}</svg>'


def timeline_legend(evidence: FamilyEvidence, review: Window | None,
                    baseline: Window | None) -> str:
    """What each mark of :func:`timeline_svg` means, for the marks the timeline shows."""
    items: list[tuple[str, str]] = []
    if review is not None:
        items.append((_swatch("#9cc3ea"), "review window (shaded below)"))
    if baseline is not None:
        items.append((_swatch("#c9d3de"), "baseline before attachment"))
    if evidence.attendance:
        items.append((_swatch("rgb(205,205,225)") + _swatch("rgb(80,80,100)"),
                      "school absence per term, darker = more sessions missed"))
    for k, c in INCIDENT_COLOUR.items():
        if any(i.kind == k for i in evidence.incidents):
            items.append((_swatch(c, "dot"), k.replace("_", " ")))
    if any(i.serious for i in evidence.incidents):
        items.append((_swatch("#555", "big"), "larger dot: serious incident"))
    for k, c in EMPLOYMENT_COLOUR.items():
        if any(s.kind == k for s in evidence.employment):
            items.append((_swatch(c), k.replace("_", " ")))
    if any(s.kind not in EMPLOYMENT_COLOUR for s in evidence.employment):
        items.append((_swatch(OTHER_EMPLOYMENT), "other progress to work"))
    for k, c in CARE_COLOUR.items():
        if any(s.status == k for s in evidence.care_status):
            items.append((_swatch(c), f"{k.replace('_', ' ').upper()} "
                                      f"({CARE_NAME.get(k, k)})"))
    for shape, present, label in (("tri", evidence.indicators, "indicator recorded"),
                                  ("dia", evidence.judgements, "lead worker's judgement"),
                                  ("sq", evidence.attestations, "attestation")):
        if present:
            items.append((_swatch("#37474f", shape), label))
    items.append((_swatch("#fff", outline=True), "outlined: a record the decision rests on"))
    if evidence.identified_on:
        items.append((_swatch("#607d8b", "dash"), "identified"))
    if evidence.attachment is not None:
        items.append((_swatch("#1f5fa8", "solid"), "attached"))
    items.append((_swatch("#111", "solid"), "review date (claimed on)"))
    return ('<div class="legend">' + "".join(f"<span>{sw}{_e(label)}</span>"
                                             for sw, label in items) + "</div>")
