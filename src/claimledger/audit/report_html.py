"""One self-contained HTML page that explains a claim to an auditor, on screen and on A4.

Built from :func:`claims.explain` (the decision replayed as known at submission) and the
family's evidence as known then: the verdict, each problem's outcomes with their reasons, a
timeline (inline SVG: attendance, incidents, employment and care status around attachment
and the review window), the evidence the decision rests on with each record's hash, the
registered policy and the checkpoint that signed the claim. No scripts, fonts, images or
links to anything outside the page, so it can be archived and printed as it is.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from ..domain.base import iso_utc
from ..domain.claim import Claim
from ..errors import IntegrityError
from ..evaluate.service import family_records
from ..evaluate.timeline import select_evidence
from ..ledger.envelope import event_id, stream_uuid
from ..policy.model import Policy
from . import claims
from .proofs import Prover
from .reasons import measure_findings, outcome_findings, plain, problem_sentence, sentence
from .report_style import Hashes, e, foot, head, mark
from .timeline_svg import percent, review_windows, timeline_legend, timeline_svg

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
    position = app.streams.stream(stream_uuid(Claim.stream_name(claim_id)))[0][0]
    cps = [dict(r["payload"], event=f"{r['envelope']['stream']}#{r['envelope']['version']}")
           for r in ledger if r["envelope"]["type"] == "Ledger.Checkpointed"]
    checkpoint = next((c for c in cps if c["last_position"] >= position), None)
    if checkpoint is not None:
        # The claim's inclusion proof from the stored tiles, checked against the signed root
        # (an altered tile stops the report here).
        prover = Prover(app.tiles, checkpoint["tree_size"], checkpoint["root"])
        leaf = prover.leaf_index(position)
        if leaf is None:
            raise IntegrityError(f"claim {claim_id}: its Claim.Submitted event is not in the "
                                 "stored Merkle tiles (run `claimledger verify`)")
        path = prover.prove(leaf, submitted["hash"], f"claim {claim_id}")
        checkpoint = {**checkpoint, "leaf_index": leaf, "proof_hashes": len(path)}
    evidence_rows = [{"event": eid, **by_id.get(eid, {"type": "?", "recorded_at": "",
                                                      "hash": "", "summary": ""})}
                     for eid in explained["decision"].get("evidence", [])]
    return {"explained": explained, "evidence": evidence, "policy": policy,
            "evidence_rows": evidence_rows, "records": by_id,
            "submitted_hash": submitted["hash"], "checkpoint": checkpoint,
            "generated_at": iso_utc(app.settings.clock())}


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
                f"({percent(p.get('sessions_absent', 0), p.get('sessions_possible', 0))}), "
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



# --- the sections (pure: from claim_report's data) ----------------------------------------------
def as_of(data: dict[str, Any]) -> date:
    return date.fromisoformat(data["explained"]["claimed_on"])


def record_rows(data: dict[str, Any], ids: list[str], hashes: Hashes,
                caption: str = "") -> str:
    """A table of records by event id: kind, what it says, when recorded, short hash."""
    recs = data["records"]
    kinds = list(TYPE_LABEL)

    def order(eid: str) -> tuple[int, int]:
        t = recs.get(eid, {}).get("type", "")
        return (kinds.index(t) if t in kinds else len(kinds), _version(eid))

    out = [f"<table>{caption}<thead><tr><th>Record</th><th>Kind</th><th>What it says</th>"
           "<th>Recorded</th><th>Hash</th></tr></thead><tbody>"]
    for eid in sorted(dict.fromkeys(ids), key=order):
        r = recs.get(eid, {"type": "?", "recorded_at": "", "hash": "", "summary": ""})
        out.append(f'<tr><td class="mono nw">{e(eid)}</td>'
                   f'<td>{e(TYPE_LABEL.get(r["type"], r["type"]))}</td>'
                   f'<td>{e(r["summary"])}</td>'
                   f'<td class="mono nw">{e(r["recorded_at"][:10])}</td>'
                   f'<td>{hashes.short(r["hash"], eid)}</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def clause(policy: Policy, section: str | None, what: str = "") -> str:
    """Where the rule is written: the source document and the section the policy cites."""
    where = f"{e(policy.source.document)}, section {e(section)}" if section else \
        f"{e(policy.source.document)}"
    lead = f"{e(what)}: " if what else ""
    return (f'<p class="clause">{lead}<b>Policy clause</b> {where} '
            f'<span class="note">({e(policy.id)})</span></p>')


def payment_text(data: dict[str, Any]) -> str:
    """The amount the claim recorded, the rate it came from and the date that picked it; or
    why the claim records none."""
    ex, policy = data["explained"], data["policy"]
    dec = ex["decision"]
    pay = dec.get("payment") or {}
    amount = ex.get("amount")
    if amount:
        if not pay:
            return f"£{amount}"
        basis = ("rate by the attachment date" if pay.get("basis") == "attachment_date"
                 else "rate by the claim date")
        note = f"; {pay['note']}" if pay.get("note") else ""
        return f"£{amount} ({pay.get('item')}, {basis}; {pay.get('section')}{note})"
    if not dec.get("route"):
        return "none: the claim is not claimable"
    if not policy.payments:
        return (f"none recorded: the registered policy {policy.id} states no payment rates "
                "(its note says where the amounts are set)")
    return (f"none recorded: no payment rate of {policy.id} applies to the "
            f"{dec.get('route')} route on {ex['claimed_on']}")


def payment_items(data: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(item, amount, what it is, section) of every rate of the policy in force for this
    claim: the one the claim recorded, the attachment fee paid up front, the cap per family."""
    ex, policy, ev = data["explained"], data["policy"], data["evidence"]
    on = as_of(data)
    attached = ev.attachment.attached_on if ev.attachment is not None else None
    paid = (ex["decision"].get("payment") or {})
    out = []
    for p in policy.payments:
        day = p.basis_day(on, attached)
        if day is None or not p.valid_on(day):
            continue
        if p.item == paid.get("item") and p.section == paid.get("section"):
            what = "paid by this claim" + (f" (£{ex['amount']} after the cap)"
                                           if ex.get("amount") != str(p.amount) else "")
        elif p.item == "attachment":
            what = "attachment fee, paid up front (not part of this claim)"
        elif p.item == "total":
            what = "the most a family earns in all"
        else:
            what = "a rate this claim does not use"
        out.append((p.item, f"£{p.amount}", what, p.section))
    return out


def section_payment(data: dict[str, Any]) -> str:
    items = payment_items(data)
    out = ['<h2 id="payment">Payment</h2>',
           f'<p><b>Amount claimed:</b> {e(payment_text(data))}</p>']
    if items:
        out.append("<table><thead><tr><th>Item</th><th>Rate</th><th>For this claim</th>"
                   "<th>Policy section</th></tr></thead><tbody>")
        out.extend(f"<tr><td>{e(i)}</td><td class=\"nw\">{e(a)}</td><td>{e(w)}</td>"
                   f"<td>{e(s)}</td></tr>" for i, a, w, s in items)
        out.append("</tbody></table>")
    return "".join(out)


def findings_html(f: Any) -> str:
    """A finding tree as nested lists, each test with its mark and its numbers."""
    cls, mk = ("ok", "✓") if f.met else ("no", "✗")
    kids = ("<ul class=\"why\">" + "".join(findings_html(c) for c in f.children) + "</ul>"
            if f.children else "")
    return (f'<li class="{cls}"><span class="mk">{mk}</span><b>{e(f.title)}</b>: '
            f"{e(f.text)}{kids}</li>")


def why(f: Any) -> str:
    return f'<ul class="why">{findings_html(f)}</ul>'


def employment_evidence(data: dict[str, Any]) -> list[str]:
    emp = data["explained"]["decision"].get("employment_route") or {}
    return list(emp.get("evidence", []))


def employment_body(data: dict[str, Any], hashes: Hashes, full: bool = True) -> str:
    """The employment route's test in words (the weeks it counted); ``full``: with the
    clause and the spells it rests on."""
    policy, dec = data["policy"], data["explained"]["decision"]
    rule = policy.claim.employment_route
    emp = dec.get("employment_route")
    if rule is None or emp is None:
        return ""
    out = []
    reason = str(emp.get("reason", ""))
    if reason.startswith("double funding:"):
        out.append(f"<p>{e(sentence(plain(reason.split(', so the employment', 1)[0])))} "
                   "So the employment route cannot count.</p>")
    out.append(why(measure_findings(rule.measure, data["evidence"], as_of(data))))
    if not full:
        return "".join(out)
    out.append(clause(policy, rule.section, "Employment route"))
    ids = employment_evidence(data)
    if ids:
        out.append(record_rows(data, ids, hashes))
    return "".join(out)


def section_employment(data: dict[str, Any], hashes: Hashes) -> str:
    dec = data["explained"]["decision"]
    body = employment_body(data, hashes)
    if not body:
        return ""
    emp = dec["employment_route"]
    rests = ("This claim rests on continuous employment." if dec.get("route") == "employment"
             else "Not the route this claim rests on.")
    return (f'<h2 id="employment">Employment route</h2><p>{mark(emp.get("met"))} {rests}</p>'
            + body)


def section_problems(data: dict[str, Any], compact: bool = False) -> str:
    """Each problem with its outcomes in words. ``compact``: one line a problem (for a claim
    that rests on the employment route, where the outcomes are not what is paid for)."""
    policy, dec = data["policy"], data["explained"]["decision"]
    problems = dec.get("problems", [])
    met = sum(1 for x in problems if x.get("met"))
    out = [f'<h2 id="problems">Problems and outcomes ({met} of {len(problems)} met)</h2>']
    if compact:
        out.append('<p class="note">The claim rests on the employment route; the progress '
                   "route was tested too and is summarised here.</p><table><thead><tr>"
                   "<th>Problem</th><th>Result</th><th>How it is judged</th></tr></thead>"
                   "<tbody>")
        for prob in problems:
            out.append(f"<tr><td>{e(prob.get('title') or prob['problem'])}</td>"
                       f"<td>{mark(prob.get('met'))}</td>"
                       f"<td>{e(problem_sentence(policy, prob))}</td></tr>")
        out.append("</tbody></table>")
        return "".join(out)
    for prob in problems:
        model = policy.problem(prob["problem"])
        req = "required" if prob.get("required") else "not required for the claim"
        out.append('<div class="problem"><div class="head">'
                   f'<span><b>{e(prob.get("title") or prob["problem"])}</b> '
                   f'<span class="note">({e(prob["problem"])}, {e(prob.get("stage"))} stage, '
                   f'{req}; indicators: {e(", ".join(prob.get("indicators", [])) or "none")})'
                   f'</span></span>{mark(prob.get("met"))}</div>'
                   f'<p>{e(problem_sentence(policy, prob))}'
                   + (f' <span class="note">Section {e(model.section)}.</span>' if model else "")
                   + "</p>")
        if prob.get("outcomes"):
            out.append("<table><thead><tr><th>Outcome</th><th>Definition</th><th>Why</th>"
                       "</tr></thead><tbody>")
            for o in prob["outcomes"]:
                om = policy.outcome(o["id"])
                sec = f' <span class="note">(section {e(om.section)})</span>' if om else ""
                out.append(f'<tr><td class="id">{e(o["id"])}</td>'
                           f'<td class="def">{e(o.get("title", ""))}{sec}</td>'
                           f"<td>{why(outcome_findings(policy, o, data['evidence'], as_of(data)))}"
                           "</td></tr>")
            out.append("</tbody></table>")
        out.append("</div>")
    return "".join(out)


def section_timeline(data: dict[str, Any]) -> str:
    policy, dec, ev = data["policy"], data["explained"]["decision"], data["evidence"]
    on = as_of(data)
    review, baseline = review_windows(policy, dec, ev, on)
    used = {r["event"] for r in data["evidence_rows"]}
    return ('<h2 id="timeline">Timeline</h2><figure class="timeline">'
            + timeline_svg(ev, on, review, baseline, used)
            + timeline_legend(ev, review, baseline) + "</figure>"
            '<p class="note">Each row is one member\'s records as the ledger knew them at '
            "submission; the shaded window is the longest the policy's outcomes look back over "
            "from the review date.</p>")


def section_evidence(data: dict[str, Any], hashes: Hashes) -> str:
    rows = data["evidence_rows"]
    ex = data["explained"]
    out = [f'<h2 id="evidence">Evidence ({len(rows)} records)</h2>',
           '<p class="note">The records the decision rests on. Each hash is the SHA-256 of the '
           "record's envelope (in full at the end); <code>claimledger bundle</code> carries the "
           "records with inclusion proofs so anyone can check them without the database.</p>",
           record_rows(data, [r["event"] for r in rows], hashes)]
    if ex.get("selection_notes"):
        out.append('<p class="note">Selection notes: '
                   + "; ".join(e(n) for n in ex["selection_notes"]) + "</p>")
    return "".join(out)


def kv(rows: list[tuple[str, str]]) -> str:
    """A two-column table; values are HTML already."""
    return ('<table class="kv"><tbody>' + "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>"
                                                  for k, v in rows) + "</tbody></table>")


def section_policy(data: dict[str, Any], hashes: Hashes) -> str:
    policy, ex = data["policy"], data["explained"]
    src = policy.source
    return '<h2 id="policy">Policy</h2>' + kv([
        ("Id", e(policy.id)), ("Title", e(policy.title)), ("Authority", e(policy.authority)),
        ("In force", e(policy.period())),
        ("Source document", e(f"{src.title} ({src.authority}, {src.date}; {src.document})")),
        ("Registered SHA-256", hashes.short(ex["policy_sha256"], "registered policy")),
    ])


def section_checkpoint(data: dict[str, Any], hashes: Hashes) -> str:
    cp = data.get("checkpoint")
    if not cp:
        return ('<h2 id="checkpoint">Signed checkpoint</h2>'
                '<p class="notmet">No checkpoint covers this claim yet.</p>')
    return ('<h2 id="checkpoint">Signed checkpoint</h2>' + kv([
        ("Checkpoint event", f'<span class="mono">{e(cp["event"])}</span>'),
        ("Events covered (tree size)", e(cp["tree_size"])),
        ("Merkle root", hashes.short(cp["root"], "checkpoint Merkle root")),
        ("Signed at", e(cp["signed_at"])),
        ("Signing key id", hashes.short(cp["key_id"], "signing key id")),
        ("Claim event hash", hashes.short(data["submitted_hash"], "claim event")),
        ("Inclusion proof", e(f"leaf {cp['leaf_index']} of {cp['tree_size']}: "
                              f"{cp['proof_hashes']} hashes, checked against the signed root")),
    ]) + '<p class="note">The first checkpoint that covers the claim (sealed at submission): '
         "an Ed25519 signature over this RFC 9162 Merkle root commits the authority to every "
         "record above.</p>")


def section_history(data: dict[str, Any]) -> str:
    ex = data["explained"]
    out = []
    if ex.get("changed_since"):
        out.append('<h2>Changed since submission</h2><ul class="reasons">')
        out.extend(f"<li>{e(sentence(plain(c)))}</li>" for c in ex["changed_since"])
        out.append("</ul>")
    out.append("<h2>Claim history</h2><table><thead><tr><th>Recorded</th><th>Event</th>"
               "<th>By</th><th>Detail</th></tr></thead><tbody>")
    for h in ex.get("history", []):
        detail = h.get("note") or h.get("reason") or h.get("result") or ""
        if h["type"] == "Claim.SpotChecked":
            detail = f"{h.get('result')}: {h.get('reason')}" + (
                f" (sample {h['sample_id']})" if h.get("sample_id") else "")
        out.append(f'<tr><td class="mono nw">{e(h["recorded_at"][:19])}</td>'
                   f'<td>{e(h["type"])}</td><td>{e(h["actor"])}</td><td>{e(detail)}</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def render_html(data: dict[str, Any]) -> str:
    """The single-claim page, from :func:`claim_report`'s data. Pure."""
    ex = data["explained"]
    dec = ex["decision"]
    policy: Policy = data["policy"]
    claimable = bool(dec.get("claimable"))
    route = dec.get("route")
    hashes = Hashes()
    p = [head(f"Claim {ex['claim_id']}: audit report", "claim audit report",
              data["generated_at"])]
    p.append(f'<h1>Claim {e(ex["claim_id"])}</h1>')
    p.append(f'<p class="sub">Family {e(ex["family_ref"])} · {e(policy.title)}</p>')
    verdict = "CLAIMABLE" if claimable else "NOT CLAIMABLE"
    replay = ("matches the recorded decision" if ex["replay_matches_recorded"]
              else "DIFFERS from the recorded decision")
    p.append(f'<div class="verdict {"ok" if claimable else "bad"}" id="verdict">'
             f'<div class="big">{verdict}{" · " + e(route) + " route" if route else ""}</div>'
             '<div class="facts">'
             f'<span>Eligible: <b>{"yes" if dec.get("eligible") else "no"}</b></span>'
             f'<span>Status: <b>{e(ex["status"])}</b></span>'
             f"<span>Replay: <b>{replay}</b></span></div></div>")
    p.append(kv([("Claimed on (review date)", e(ex["claimed_on"])),
                 ("As known at (submission)", e(dec.get("known_at"))),
                 ("Amount", e(payment_text(data))),
                 ("Policy", e(f"{ex['policy_id']}: {policy.title}")),
                 ("claimledger version at submission", e(ex["claimledger_version"]))]))
    if dec.get("reasons"):
        p.append('<h2>Reasons</h2><ul class="reasons">')
        p.extend(f"<li>{e(sentence(plain(r)))}</li>" for r in dec["reasons"])
        p.append("</ul>")
    if route == "employment":
        p.append(section_employment(data, hashes))
        p.append(section_problems(data, compact=True))
    else:
        p.append(section_problems(data))
        p.append(section_employment(data, hashes))
    p.append(section_payment(data))
    p.append(section_timeline(data))
    p.append(section_evidence(data, hashes))
    p.append(section_policy(data, hashes))
    p.append(section_checkpoint(data, hashes))
    p.append(section_history(data))
    p.append(hashes.appendix())
    p.append(foot(f'Claim {e(ex["claim_id"])} · replayed as known at {e(dec.get("known_at"))} '
                  "with the registered policy bytes · this page is self-contained: no scripts "
                  "or external resources."))
    return "\n".join(p)


def write_report(app: LedgerApp, claim_id: str, out: Any) -> dict[str, Any]:
    data = claim_report(app, claim_id)
    page = render_html(data)
    out.write_text(page, encoding="utf-8")
    dec = data["explained"]["decision"]
    return {"claim_id": claim_id, "file": str(out), "bytes": len(page.encode("utf-8")),
            "claimable": dec.get("claimable"), "route": dec.get("route"),
            "problems": len(dec.get("problems", [])), "evidence": len(data["evidence_rows"])}
