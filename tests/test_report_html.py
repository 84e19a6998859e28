"""The auditor's one-page explanation of a claim, as HTML that stands on its own.

An internal auditor files the page with the claim: it must say the decision and why, show
the family's records on a timeline around attachment and the review window, list the
evidence with hashes, name the policy and the checkpoint, use nothing outside itself, and
print on A4. The page is rendered by a real browser (headless Chromium) in this suite.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from county import County, terms
from test_bundle import family, run_inprocess

CLAIM = "W-1/progress"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[County, Path, dict[str, Any]]:
    """W-1 claimed on 31 March 2016, validated, spot-checked in May; a corrected school
    return in May shows 40% absence in the spring term, so today the claim would rest on the
    adult's employment instead."""
    c = County(tmp_path_factory.mktemp("report"), run_inprocess)
    c.init("Worcestershire")
    c.ingest(family("W-1", 5, into_work=True), now="2016-03-20T10:00:00Z")
    c.cli("claim", "submit", "W-1", "--on", "2016-03-31", now="2016-04-02T09:00:00Z")
    c.cli("claim", "validate", CLAIM, "--note", "evidence complete", now="2016-04-10T09:00:00Z")
    c.cli("spotcheck", "sample", "--rate", "1", "--seed", "4", now="2016-05-02T09:00:00Z")
    c.cli("spotcheck", "record", CLAIM, "--result", "upheld", "--reason",
          "school letters confirm attendance", now="2016-05-03T09:00:00Z", actor="checker")
    late = [t for t in terms("W-1-C1", 40, (2015,)) if t["term_start"] == "2016-01-04"]
    c.ingest({"attendance": late}, now="2016-05-10T09:00:00Z")
    page = c.tmp / "W-1.html"
    _, made, _ = c.cli("claim", "report", CLAIM, "--html", str(page), "--json")
    assert made["file"] == str(page)
    _, explained, _ = c.cli("claim", "explain", CLAIM, "--json")
    return c, page, explained


def test_the_page_uses_nothing_outside_itself_and_prints_on_a4(report):
    _, page, _ = report
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert not re.search(r"\b(src|href)\s*=", text, re.I)
    assert "url(" not in text and "@import" not in text
    # the only URL is the SVG namespace name, which is never fetched
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) == {"http://www.w3.org/2000/svg"}
    assert "@page { size: A4" in text and "@media print" in text


def _chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium")
                                         .exists() else None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed in CI (.ci/run installs it)")
        pytest.skip("chromium not installed (apt-get install chromium); under CI=true this fails")
    return found


def _text(dom: str) -> str:
    """The page's visible text, roughly: styles and tags out, entities decoded."""
    plain = re.sub(r"<style.*?</style>", " ", dom, flags=re.S)
    plain = html.unescape(re.sub(r"<[^>]+>", " ", plain))
    return re.sub(r"\s+", " ", plain)


def test_the_page_renders_in_headless_chromium_with_the_decision(report, tmp_path: Path):
    _, page, explained = report
    shot, pdf = tmp_path / "report.png", tmp_path / "report.pdf"
    done = subprocess.run(
        [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", f"--print-to-pdf={pdf}", "--window-size=1240,1754",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = _text(done.stdout)
    dec = explained["decision"]

    assert "Claim W-1/progress" in dom
    assert "CLAIMABLE · progress route" in dom and "Status: validated" in dom
    assert "Replay: matches the recorded decision" in dom
    met = sum(p["met"] for p in dec["problems"])
    assert f"Problems and outcomes ({met} of {len(dec['problems'])} met)" in dom
    for p in dec["problems"]:
        assert p["title"] in dom
        for o in p["outcomes"]:
            assert o["title"] in dom, o["id"]
    assert f"Evidence ({len(dec['evidence'])} records)" in dom
    for h in explained["history"][:1]:
        assert h["hash"] in dom  # the claim event's hash, in the appendix
    for lane in ("Absence · W-1-C1", "Incidents · W-1-A1", "Employment · W-1-A1",
                 "Care status · W-1-C1", "review window 2015-04-11..2016-03-31"):
        assert lane in dom, lane
    assert "Route: progress at submission, employment today" in dom
    assert "upheld: school letters confirm attendance" in dom
    assert "Signed checkpoint" in dom and explained["policy_sha256"] in dom

    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    printed = pdf.read_bytes()
    assert printed.startswith(b"%PDF")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 (\d+)[.\d]* (\d+)", printed)
    assert boxes and all((int(w), int(h)) in ((594, 841), (595, 842)) for w, h in boxes)


def test_the_page_reads_in_plain_words_with_short_hashes_and_a_legend(report):
    """What a person reads on paper: each test of an outcome as a sentence with its numbers
    (not the machine string), absence called absence, every mark of the timeline explained,
    hashes short in the body and whole, once, in the appendix, and the amount or why there is
    none. Tall cards may break across pages (no half-empty pages)."""
    _, page, explained = report
    text = page.read_text(encoding="utf-8")
    dom = _text(text)
    for raw in ("any of (", "all of (", "[not met]", "[met]", "status_step_down:",
                "threshold <", "Attendance ·"):
        assert raw not in dom, raw
    assert ("School attendance : every school-age child passes: W-1-C1 absence 5.00% "
            "(15/300 sessions) over 2015-04-11 to 2016-03-24, needs under 15%") in dom
    assert "Any one of 2 tests is enough : none passes" in dom
    assert "5.0% absent" in dom
    for mark in ("review window", "baseline before attachment", "school absence per term",
                 "asb incident", "CIN (child in need)", "indicator recorded",
                 "lead worker's judgement", "attestation",
                 "outlined: a record the decision rests on", "identified", "attached",
                 "review date (claimed on)"):
        assert mark in dom, mark
    body, appendix = text.split('<h2 id="hashes">', 1)
    for h in [explained["policy_sha256"], explained["history"][0]["hash"]]:
        assert h not in _text(body) and _text(appendix).count(h) == 1 and h[:12] + "…" in body
    assert ("none recorded: the registered policy worcestershire/stronger-families-2015-16 "
            "states no payment rates") in dom
    css = text.split("<style>", 1)[1].split("</style>", 1)[0]
    problem_rules = re.findall(r"\.problem\s*\{[^}]*\}", css)
    assert problem_rules and not any("avoid" in r for r in problem_rules)
