"""The spot-check case file: what the ministry's checker reads for each claim of a sample.

The spot check asks three questions of every sampled claim: was the family eligible, is there
evidence of the whole-family approach (a lead worker, an assessment, a plan), and is the claim
itself eligible. The case file answers each with yes or no, the records it rests on (event
ids and dates), the checkpoint that signed the claim and the clause of the policy, one page a
claim, with an index of the sample. Pages are self-contained HTML that print on A4; the
folder is written whole or not at all.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..domain.base import iso_utc
from ..errors import UsageError
from ..evaluate.decide import ESSENTIAL_NAMES
from ..policy.model import Policy
from . import spotcheck
from .reasons import counted, outcome_findings, problem_sentence, sentence
from .report_html import (
    claim_report,
    employment_body,
    employment_evidence,
    kv,
    payment_text,
    record_rows,
    section_history,
    section_timeline,
    why,
)
from .report_style import Hashes, e, foot, head, mark

if TYPE_CHECKING:
    from ..application import LedgerApp

QUESTIONS = ("Was the family eligible?",
             "Is there evidence of the whole-family approach (lead worker, assessment, plan)?",
             "Is the claim itself eligible?")


@dataclass
class Answer:
    """One of the three questions answered for one claim."""

    number: int
    yes: bool
    lines: list[str]  # plain sentences with the dates and numbers
    evidence: list[str]  # event ids the answer rests on
    clauses: list[tuple[str, str | None]]  # (what, section) of the policy
    html: list[str] = field(default_factory=list)  # findings, in words

    @property
    def question(self) -> str:
        return QUESTIONS[self.number - 1]


def _on(data: dict[str, Any]) -> date:
    return date.fromisoformat(data["explained"]["claimed_on"])


def eligible(data: dict[str, Any]) -> Answer:
    """Question 1: the headline problems evidenced at the stages the policy counts."""
    policy: Policy = data["policy"]
    dec, ev = data["explained"]["decision"], data["evidence"]
    rule = policy.eligibility
    problems = [p for p in dec.get("problems", []) if p.get("stage") in rule.stages
                and (rule.problems is None or p["problem"] in rule.problems)]
    titles = "; ".join(f"{p.get('title') or p['problem']} ({', '.join(p['indicators'])})"
                       for p in problems)
    stages = " or ".join(rule.stages)
    lines = [sentence(f"{counted(len(problems), 'headline problem')} evidenced at {stages}: "
                      f"{titles or 'none'}"),
             sentence(f"The policy needs at least {rule.min_problems}")]
    if ev.identified_on:
        lines.insert(0, sentence(f"Identified on {ev.identified_on}"))
    registered = [eid for eid, r in data["records"].items() if r["type"] == "Family.Registered"]
    ids = registered[:1] + [i for p in problems for i in p.get("evidence", [])]
    in_force = policy.in_force(_on(data))
    if not in_force:
        lines.append(sentence(f"The policy is not in force on {_on(data)} ({policy.period()})"))
    return Answer(1, bool(dec.get("eligible")) and in_force, lines, ids,
                  [("Eligibility", rule.section)])


def whole_family(data: dict[str, Any]) -> Answer:
    """Question 2: attachment with a lead worker, a whole-family assessment and a plan dated
    by the review date, and the lead worker's judgements and attestations."""
    policy: Policy = data["policy"]
    ev, on = data["evidence"], _on(data)
    att = ev.attachment
    lines: list[str] = []
    ids: list[str] = []
    ok = att is not None
    if att is None:
        lines.append("No attachment is recorded: no lead worker, assessment or plan.")
    else:
        ids.append(att.event_id)
        parts = {"lead_professional": att.lead_professional or None,
                 "assessment": att.assessment_on if att.assessment_on and
                 att.assessment_on <= on else None,
                 "plan": att.plan_on if att.plan_on and att.plan_on <= on else None}
        lines.append(sentence(f"Attached on {att.attached_on}"))
        for name, value in parts.items():
            words = ESSENTIAL_NAMES[name].capitalize()
            lines.append(sentence(f"{words}: {value}" if value else f"{words}: none recorded "
                                                                    f"by {on}"))
            ok = ok and value is not None
    for j in sorted((j for j in ev.judgements if j.judged_on <= on), key=lambda j: j.judged_on):
        flags = ", ".join(f"{k.replace('_', ' ')} {'yes' if getattr(j, k) else 'no'}"
                          for k in ("progress", "sustained", "intensity_reduced"))
        lines.append(sentence(f"Lead worker's judgement by {j.practitioner} on {j.judged_on} "
                              f"({j.problem}): {flags}"))
        ids.append(j.event_id)
    for a in sorted((a for a in ev.attestations if a.attested_on <= on),
                    key=lambda a: a.attested_on):
        lines.append(sentence(f"Attestation '{a.outcome.replace('_', ' ')}' by "
                              f"{a.practitioner} on {a.attested_on}"))
        ids.append(a.event_id)
    missing = [r for r in data["explained"]["decision"].get("reasons", [])
               if r.startswith("essential missing")]
    lines += [sentence(m) for m in missing]
    required = [ESSENTIAL_NAMES[n] for n in policy.claim.essentials]
    if required:
        lines.append(sentence("The policy requires " + ", ".join(required)))
    return Answer(2, ok and not missing, lines, [i for i in ids if i],
                  [("Claim rule (essentials)", policy.claim.section)])


def claim_eligible(data: dict[str, Any], hashes: Hashes) -> Answer:
    """Question 3: the route the claim rests on and its evidence, the payment, the replay and
    the checkpoint that signed the claim."""
    policy: Policy = data["policy"]
    ex = data["explained"]
    dec = ex["decision"]
    route = dec.get("route")
    lines: list[str] = []
    ids: list[str] = []
    clauses: list[tuple[str, str | None]] = [("Claim rule", policy.claim.section)]
    extra: list[str] = []
    if route == "employment" and policy.claim.employment_route is not None:
        lines.append("The claim rests on the employment route (continuous employment).")
        extra.append(employment_body(data, hashes, full=False))
        ids += employment_evidence(data)
        clauses.append(("Employment route", policy.claim.employment_route.section))
    elif route == "progress":
        lines.append(sentence("The claim rests on the progress route: every problem "
                              f"evidenced at {'/'.join(policy.claim.must_meet_stages)} must "
                              "be met"))
        items = []
        for prob in (p for p in dec.get("problems", []) if p.get("required")):
            met = [o for o in prob.get("outcomes", []) if o.get("met")] or prob["outcomes"]
            trees = "".join(f'<div class="note">Outcome {e(o["id"])}: {e(o.get("title"))}'
                            "</div>"
                            + why(outcome_findings(policy, o, data["evidence"], _on(data)))
                            for o in met)
            items.append(f"<li>{mark(prob.get('met'))} <b>{e(prob.get('title'))}</b>: "
                         f"{e(problem_sentence(policy, prob))}{trees}</li>")
            for o in met:
                ids += o.get("evidence", [])
                model = policy.outcome(o["id"])
                clauses.append((f"Outcome {o['id']}", model.section if model else None))
        extra.append('<ul class="reasons">' + "".join(items) + "</ul>")
        ids += [i for j in data["evidence"].judgements if (i := j.event_id) in dec["evidence"]]
    else:
        lines += [sentence(r) for r in dec.get("reasons", [])]
    lines.append(sentence(f"Payment: {payment_text(data)}"))
    pay = dec.get("payment") or {}
    if pay.get("section"):
        clauses.append((f"Payment ({pay.get('item')})", pay["section"]))
    lines.append("Replayed with the registered policy bytes as known at submission: "
                 + ("the same decision." if ex["replay_matches_recorded"]
                    else "a DIFFERENT decision."))
    if ex["status"] not in ("submitted", "validated"):
        lines.append(sentence(f"The claim is {ex['status']}"))
    cp = data.get("checkpoint")
    if cp:
        lines.append(f"Sealed under checkpoint {cp['event']} ({cp['tree_size']} events, signed "
                     f"{cp['signed_at'][:10]}, root {cp['root'][:12]}…).")
        hashes.short(cp["root"], f"checkpoint {cp['event']} Merkle root")
        hashes.short(data["submitted_hash"], "claim event (Claim.Submitted)")
    else:
        lines.append("No checkpoint covers the claim yet.")
    yes = bool(dec.get("claimable")) and bool(ex["replay_matches_recorded"]) and cp is not None
    return Answer(3, yes, lines, list(dict.fromkeys(ids)), clauses, extra)


def answers(data: dict[str, Any], hashes: Hashes) -> list[Answer]:
    return [eligible(data), whole_family(data), claim_eligible(data, hashes)]


def _answer_html(data: dict[str, Any], a: Answer, hashes: Hashes, shown: set[str]) -> str:
    """One answer's box; records already tabled under an earlier answer are named, not
    repeated."""
    policy: Policy = data["policy"]
    out = [f'<section class="q {"yes" if a.yes else "no"}" id="q{a.number}">'
           f"<h2><span>{a.number}. {e(a.question)}</span>"
           f'<span class="ans">{mark(a.yes, "yes", "no")}</span></h2>']
    out.extend(f"<p>{e(line)}</p>" for line in a.lines)
    out.extend(a.html)
    new = [i for i in a.evidence if i not in shown]
    again = [i for i in a.evidence if i in shown]
    if new:
        out.append(record_rows(data, new, hashes))
    if again:
        out.append(f'<p class="note">Also rests on {e(", ".join(again))} (above).</p>')
    shown.update(a.evidence)
    for what, section in dict.fromkeys(a.clauses):
        out.append(f'<p class="clause">{e(what)}: <b>{e(policy.source.document)}</b>'
                   + (f", section {e(section)}" if section else "") + "</p>")
    out.append("</section>")
    return "".join(out)


def claim_page(data: dict[str, Any], sample: dict[str, Any], index: str) -> tuple[str,
                                                                                    list[Answer]]:
    """One claim's page of the case file, and its three answers. Pure."""
    ex = data["explained"]
    policy: Policy = data["policy"]
    hashes = Hashes()
    found = answers(data, hashes)
    result = sample["results"].get(ex["claim_id"])
    p = [head(f"Spot check {sample['sample_id']}: claim {ex['claim_id']}",
              f"spot-check case file · sample {sample['sample_id']}", data["generated_at"])]
    p.append(f'<p class="note"><a href="{e(index)}">← the sample\'s index</a></p>')
    p.append(f'<h1>Claim {e(ex["claim_id"])}</h1>')
    p.append(f'<p class="sub">Family {e(ex["family_ref"])} · {e(policy.title)}</p>')
    p.append(kv([
        ("Route", e(ex["route"])), ("Claimed on (review date)", e(ex["claimed_on"])),
        ("Payment", e(payment_text(data))), ("Status", e(ex["status"])),
        ("Spot-check result", e(result or "not yet recorded")),
        ("Answers", " · ".join(f"{a.number}. {mark(a.yes, 'yes', 'no')}" for a in found)),
    ]))
    shown: set[str] = set()
    p.extend(_answer_html(data, a, hashes, shown) for a in found)
    p.append(section_timeline(data))
    p.append(section_history(data))
    p.append(hashes.appendix())
    p.append(foot(f"Spot check {e(sample['sample_id'])} · claim {e(ex['claim_id'])} · "
                  f"replayed as known at {e(ex['decision'].get('known_at'))} with the "
                  "registered policy bytes · self-contained: no scripts or external resources."))
    return "\n".join(p), found


def index_page(sample: dict[str, Any], rows: list[dict[str, Any]], rederived: dict[str, Any],
               generated_at: str) -> str:
    """The sample and its claims with their three answers. Pure."""
    p = [head(f"Spot check {sample['sample_id']}: case file", "spot-check case file",
              generated_at)]
    p.append(f"<h1>Spot check {e(sample['sample_id'])}</h1>")
    window = (f"{sample['from'] or '…'} to {sample['to'] or '…'}"
              if sample["from"] or sample["to"] else "every standing claim")
    p.append(kv([
        ("Drawn", e(f"{sample['recorded_at'][:19]} by {sample['by']}")),
        ("Rate and seed", e(f"rate {sample['rate']}, seed {sample['seed']}"
                            + (f", stratified by {sample['stratify']}"
                               if sample["stratify"] else ""))),
        ("Population", e(f"{counted(sample['population'], 'standing claim')} ({window})")),
        ("Chosen", e(counted(len(sample["chosen"]), "claim"))),
        ("Re-derived", mark(rederived["ok"], "same population, same claims",
                            "DIFFERS: " + "; ".join(rederived["reasons"]))),
    ]))
    p.append("<h2>Claims</h2><p class=\"note\">The three questions: (1) was the family "
             "eligible; (2) is there evidence of the whole-family approach (lead worker, "
             "assessment, plan); (3) is the claim itself eligible.</p>")
    p.append("<table><thead><tr><th>Claim</th><th>Family</th><th>Route</th><th>Payment</th>"
             "<th>1</th><th>2</th><th>3</th><th>Spot check</th></tr></thead><tbody>")
    for r in rows:
        p.append(f'<tr><td class="nw"><a href="{e(r["file"])}">{e(r["claim_id"])}</a></td>'
                 f'<td>{e(r["family_ref"])}</td><td>{e(r["route"])}</td>'
                 f'<td>{e(r["payment"])}</td>'
                 + "".join(f"<td>{mark(a, 'yes', 'no')}</td>" for a in r["answers"])
                 + f'<td>{e(r["result"] or "not yet recorded")}</td></tr>')
    p.append("</tbody></table>")
    p.append('<p class="note">Each claim has its own page: open it and print it (A4). The '
             "pages use nothing outside this folder.</p>")
    p.append(foot(f"Spot check {e(sample['sample_id'])} · {counted(len(rows), 'claim')}"))
    return "\n".join(p)


def page_name(n: int, claim_id: str) -> str:
    return f"claim-{n:02d}-" + re.sub(r"[^A-Za-z0-9._-]+", "-", claim_id) + ".html"


def build(app: LedgerApp, sample_id: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Every page of the case file in memory (file name -> HTML) and the index rows."""
    sample = next((s for s in spotcheck.list_samples(app) if s["sample_id"] == sample_id), None)
    if sample is None:
        raise UsageError(f"no spot-check sample {sample_id!r} "
                         "(see `claimledger spotcheck list`)")
    rederived = spotcheck.rederive(app, sample_id)
    pages: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for n, cid in enumerate(sample["chosen"], 1):
        data = claim_report(app, cid)
        name = page_name(n, cid)
        pages[name], found = claim_page(data, sample, "index.html")
        ex = data["explained"]
        rows.append({"claim_id": cid, "family_ref": ex["family_ref"], "route": ex["route"],
                     "payment": f"£{ex['amount']}" if ex.get("amount") else "none stated",
                     "file": name,
                     "answers": [a.yes for a in found], "result": sample["results"].get(cid),
                     "evidence": sorted({i for a in found for i in a.evidence})})
    pages["index.html"] = index_page(sample, rows, rederived, iso_utc(app.settings.clock()))
    return pages, rows


def write_casefile(app: LedgerApp, sample_id: str, out: Path) -> dict[str, Any]:
    """Write the case file folder whole: built in memory, written to a temporary folder
    beside ``out``, then renamed into place, so ``out`` never holds half a case file."""
    out = Path(out)
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out}: already exists and is not an empty folder; "
                         "name a new folder")
    pages, rows = build(app, sample_id)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tmp.chmod(0o755)
        for name, text in pages.items():
            (tmp / name).write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"sample_id": sample_id, "dir": str(out), "index": str(out / "index.html"),
            "claims": [{k: r[k] for k in ("claim_id", "route", "payment", "answers", "result",
                                          "evidence")} | {"file": str(out / r["file"])}
                       for r in rows]}
