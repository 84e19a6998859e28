"""The spot-check case file. The ministry samples a council's claims and asks three questions of
each: was the family eligible, is there evidence of the whole-family approach (lead worker,
assessment, plan), and is the claim itself eligible. The checker reads the answers from a
printed case file, so each claim's page must answer all three with records that exist in the
ledger, and a typical family's page must print on at most three A4 pages.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from claimledger.application import Settings, open_app
from county import County
from test_bundle import family, run_inprocess
from test_policy_readings import kelly
from test_report_html import CHROMIUM_FLAGS, _chromium, _text
from test_spotcheck import merged

QUESTIONS = ("1. Was the family eligible?",
             "2. Is there evidence of the whole-family approach (lead worker, assessment, plan)?",
             "3. Is the claim itself eligible?")
A4 = ((594, 841), (595, 842))


def words(page: str) -> str:
    """The page's visible text, with no space left before punctuation that follows a tag."""
    return re.sub(r" ([,.)])", r"\1", _text(page))


def printed(page: Path, tmp: Path) -> Path:
    """The page printed to PDF by headless Chromium, as a person would print it."""
    pdf = tmp / (page.stem + ".pdf")
    done = subprocess.run(
        [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}",
         f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return pdf


def a4_pages(pdf: Path) -> int:
    reader = PdfReader(pdf)
    for p in reader.pages:
        assert (round(p.mediabox.width), round(p.mediabox.height)) in A4
    return len(reader.pages)


def answers_on(page: str) -> dict[int, tuple[str, list[str]]]:
    """Question number -> (yes/no, the event ids tabled or named under it)."""
    found = {}
    for m in re.finditer(r'<section class="q (yes|no)" id="q(\d)">(.*?)</section>', page, re.S):
        ids = re.findall(r"\bfamily/[A-Za-z0-9-]+#\d+", m.group(3))
        found[int(m.group(2))] = (m.group(1), ids)
    return found


def in_ledger(app: Any, event: str) -> bool:
    stream, version = event.rsplit("#", 1)
    return any(rec["envelope"]["version"] == int(version)
               for _, rec in app.stream_records(stream))


def council(tmp: Path, db: str) -> tuple[County, dict[str, Any]]:
    """Worcestershire: P-1 turned around (progress route); E-1's adult left JSA for 30 hours a
    week while the child's absence stayed at 40% (employment route). Both claimed on 31 March
    2016; the ministry samples them all and upholds P-1."""
    c = County(tmp, run_inprocess, db=db)
    c.init("Worcestershire")
    c.ingest(merged(family("P-1", 5), family("E-1", 40, into_work=True)),
             now="2016-03-20T10:00:00Z")
    c.cli("claim", "submit", "P-1", "--on", "2016-03-31", now="2016-04-02T09:00:00Z")
    c.cli("claim", "submit", "E-1", "--on", "2016-03-31", now="2016-04-02T09:01:00Z")
    _, sample, _ = c.cli("spotcheck", "sample", "--rate", "1", "--seed", "4", "--json",
                         now="2016-05-02T09:00:00Z", actor="dlUHC-checker")
    c.cli("spotcheck", "record", "P-1/progress", "--result", "upheld", "--reason",
          "school letters confirm attendance", now="2016-05-03T09:00:00Z",
          actor="dlUHC-checker")
    return c, sample


def test_each_claim_page_answers_the_three_questions_and_prints_on_three_a4_pages(
        tmp_path: Path, db_url: str):
    c, sample = council(tmp_path, db_url)
    out = tmp_path / "case-SC-0001"
    _, made, _ = c.cli("spotcheck", "casefile", sample["sample_id"], "--out", str(out),
                       "--json", now="2016-05-04T09:00:00Z")
    assert sorted(p.name for p in out.iterdir()) == [
        "claim-01-E-1-employment.html", "claim-02-P-1-progress.html", "index.html"]
    assert [x["claim_id"] for x in made["claims"]] == ["E-1/employment", "P-1/progress"]

    index = (out / "index.html").read_text(encoding="utf-8")
    text = _text(index)
    assert "Spot check SC-0001" in text and "same population, same claims" in text
    for row in made["claims"]:
        assert row["answers"] == [True, True, True]
        assert f'href="{Path(row["file"]).name}"' in index and row["claim_id"] in text
    assert "upheld" in text and "not yet recorded" in text

    app = open_app(Settings(db=c.db, key_dir=c.keys))
    for row in made["claims"]:
        page = Path(row["file"]).read_text(encoding="utf-8")
        plain = words(page)
        for q in QUESTIONS:
            assert q in plain, q
        answers = answers_on(page)
        assert sorted(answers) == [1, 2, 3]
        for n, (yes, ids) in answers.items():
            assert yes == "yes" and ids, (row["claim_id"], n)
            assert all(in_ledger(app, i) for i in ids), ids
        assert set(row["evidence"]) == {i for _, ids in answers.values() for i in ids}
        assert "Eligibility: 000_2f8d70799385332e.txt, section Summary of principles" in plain
        assert "Sealed under checkpoint ledger/main#" in plain
        assert "Hashes in full" in plain
        assert a4_pages(printed(Path(row["file"]), tmp_path)) <= 3, row["claim_id"]
    app.close()

    employment = words(Path(made["claims"][0]["file"]).read_text(encoding="utf-8"))
    assert "The claim rests on the employment route" in employment
    assert ("30 whole weeks in work and off out-of-work benefits in the 30 weeks 2015-09-04 "
            "to 2016-03-31 (needs 26)") in employment
    assert "benefit_claim (jsa) 2014-01-06..2015-08-30" in employment
    progress = words(Path(made["claims"][1]["file"]).read_text(encoding="utf-8"))
    assert "Lead professional: LW-7." in progress
    assert "Whole-family assessment: 2015-06-10." in progress
    assert "Family action plan: 2015-06-20." in progress
    assert "absence 5.00% (15/300 sessions) over 2015-04-11 to 2016-03-24, needs under 15%" \
        in progress
    assert "any of (" not in progress and "[not met]" not in progress


def test_an_employment_claim_shows_the_amount_it_recorded_and_the_rates(tmp_path: Path,
                                                                        db_url: str):
    """Lancashire 4.2: Kelly's family, attached on 31 March 2013, earns the 2012/13 results
    payment of £800 beside the £3,200 attachment fee (£4,000 per family)."""
    c = County(tmp_path, run_inprocess, db=db_url)
    c.init("Lancashire", now="2012-04-01T00:00:00Z")
    c.ingest(kelly("LA-31", "2013-03-31", "2013-04-30"), now="2013-11-01T09:00:00Z")
    c.cli("claim", "submit", "LA-31", "--on", "2013-10-31", now="2013-11-01T11:00:00Z")
    c.cli("spotcheck", "sample", "--rate", "1", "--seed", "1", now="2013-12-01T09:00:00Z")
    out = tmp_path / "case"
    _, made, _ = c.cli("spotcheck", "casefile", "SC-0001", "--out", str(out), "--json",
                       now="2013-12-02T09:00:00Z")
    (row,) = made["claims"]
    assert row["payment"] == "£800" and row["answers"] == [True, True, True]
    page = Path(row["file"]).read_text(encoding="utf-8")
    plain = words(page)
    assert "Payment: £800 (results, rate by the attachment date; 4.2" in plain
    assert "The claim rests on the employment route" in plain
    assert a4_pages(printed(Path(row["file"]), tmp_path)) <= 3

    html = tmp_path / "LA-31.html"
    c.cli("claim", "report", "LA-31/employment", "--html", str(html),
          now="2013-12-02T09:00:00Z")
    report = words(html.read_text(encoding="utf-8"))
    assert "Amount claimed: £800 (results, rate by the attachment date" in report
    assert "attachment £3200 attachment fee, paid up front (not part of this claim)" in report
    assert "results £800 paid by this claim" in report
    assert "total £4000 the most a family earns in all" in report


def test_a_case_file_is_written_whole_or_not_at_all(tmp_path: Path, db_url: str):
    """A sample that does not exist, or a folder that already holds files, is one line on
    stderr, exit 2, and nothing is written."""
    c = County(tmp_path, run_inprocess, db=db_url)
    c.init("Worcestershire")
    code, out, err = c.cli("spotcheck", "casefile", "SC-0009", "--out",
                           str(tmp_path / "case"), ok=False)
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "no spot-check sample 'SC-0009'" in err
    assert not (tmp_path / "case").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".case")]

    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    code, _, err = c.cli("spotcheck", "casefile", "SC-0001", "--out", str(full), ok=False)
    assert code == 2 and "already exists and is not an empty folder" in err
    assert [p.name for p in full.iterdir()] == ["notes.txt"]
    code, _, err = c.cli("spotcheck", "casefile", "SC-0001", "--out",
                         str(tmp_path / "no" / "such"), ok=False)
    assert code == 2 and "does not exist" in err
