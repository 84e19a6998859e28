"""Data-match ingest: the file contract, provenance, idempotency, corrections, atomicity.

The stories follow two Worcestershire families (WR-0107: a mother, a persistently absent
pupil and his sister in children's social care; WR-0212: a father and a son known to the
police), loaded from the small files in ``tests/data/ingest`` the way an admin would.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claimledger.application import LedgerApp, Settings, open_app
from claimledger.errors import InputError, UsageError
from claimledger.ingest import KINDS, SCHEMAS, ingest
from claimledger.ingest.schemas import PROVENANCE, event_fields

DATA = Path(__file__).parent / "data" / "ingest"
NOW = "2016-05-01T09:00:00Z"
POLICY = "worcestershire/stronger-families-2015-16"
#: The order an admin loads a county: families first, then members, then the data matches.
ORDER = ("families", "members", "indicators", "attachments", "attendance", "incidents",
         "employment", "care_status", "scores", "judgements", "attestations")
ATTENDANCE_HEADER = ("member_ref,term_start,term_end,sessions_possible,sessions_absent,"
                     "unauthorised_absent,fixed_term_exclusions,permanent_exclusion,setting,"
                     "source")

MakeApp = Callable[..., LedgerApp]


@pytest.fixture
def make_app(new_ledger: Callable[..., LedgerApp]) -> MakeApp:
    """A fresh, initialised ledger on each backend the shared conftest offers."""

    def make(now: str = NOW) -> LedgerApp:
        return new_ledger(now=now)

    return make


def load_county(app: LedgerApp) -> LedgerApp:
    ingest(app, "families", DATA / "families.csv")
    ingest(app, "members", DATA / "members.csv")
    return app


@pytest.fixture
def county(make_app: MakeApp) -> LedgerApp:
    """A ledger holding both families and their members."""
    return load_county(make_app())


@pytest.fixture
def sqlite_county(tmp_path: Path) -> LedgerApp:
    """The county on SQLite only, for the many bad-row stories: the checks are the same on
    both backends, whose reads the other stories exercise on each."""
    app = open_app(Settings(db=f"sqlite:///{tmp_path}/cells.sqlite", key_dir=tmp_path / "ck",
                            now=NOW, actor="admin1"), must_exist=False)
    app.init("Worcestershire")
    return load_county(app)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def events(app: LedgerApp, family_ref: str) -> list[dict[str, Any]]:
    return [rec for _, rec in app.stream_records(f"family/{family_ref}")]


def of_type(app: LedgerApp, family_ref: str, type_: str) -> list[dict[str, Any]]:
    return [r for r in events(app, family_ref) if r["envelope"]["type"] == type_]


def count_events(app: LedgerApp) -> int:
    return sum(1 for _ in app.rows())


def contents(app: LedgerApp) -> tuple[list[Any], list[tuple[str, bytes]]]:
    """What the ledger holds: every stored event (position, stream, version, bytes) and every
    wrapped family key."""
    return ([(r.position, str(r.originator_id), r.version, r.state) for r in app.rows()],
            app.keystore.rows())


def fingerprint(app: LedgerApp) -> str:
    """Every stored byte: the SQLite file and its WAL, or every row on a server."""
    h = hashlib.sha256()
    path = app.location.sqlite_path
    if path is not None:
        for p in (path, path.with_name(path.name + "-wal")):
            h.update(p.read_bytes() if p.exists() else b"-")
    for row in app.rows():
        h.update(row.state)
    return h.hexdigest()


# --- the contract ---------------------------------------------------------------------------
#: The headers exactly as DESIGN.md's "Data-match files" table gives them.
DESIGN_HEADERS = {
    "families": "family_ref,authority,policy_id,identified_on",
    "members": "family_ref,member_ref,role,birth_date",
    "indicators": "family_ref,member_ref,problem,indicator,observed_on,stage,source",
    "attachments": "family_ref,attached_on,lead_professional,assessment_on,plan_on",
    "attendance": ATTENDANCE_HEADER,
    "incidents": "member_ref,occurred_on,kind,serious,source",
    "employment": "member_ref,kind,benefit,start_on,end_on,hours_per_week,source",
    "care_status": "member_ref,status,start_on,end_on,source",
    "scores": "member_ref,instrument,assessed_on,score,assessor",
    "judgements": ("family_ref,judged_on,practitioner,problem,progress,sustained,"
                   "intensity_reduced,note"),
    "attestations": "family_ref,member_ref,outcome,attested_on,practitioner,evidence",
}


def test_every_kind_has_exactly_the_design_header_and_its_events_store_every_column() -> None:
    assert set(KINDS) == set(DESIGN_HEADERS)
    for kind, header in DESIGN_HEADERS.items():
        schema = SCHEMAS[kind]
        assert ",".join(schema.header) == header, kind
        stored = set(event_fields(schema.event)) - set(PROVENANCE)
        assert stored == set(schema.payload_columns), kind
        assert set(PROVENANCE) <= set(event_fields(schema.event)), kind


# --- a county loads -------------------------------------------------------------------------
def test_a_county_loads_every_kind_with_typed_values_and_still_verifies(
    make_app: MakeApp,
) -> None:
    app = make_app()
    results = {kind: ingest(app, kind, DATA / f"{kind}.csv") for kind in ORDER}

    assert results["families"]["appended"] == 2
    assert results["members"]["appended"] == 5
    assert results["attendance"] == {
        "kind": "attendance", "file": str(DATA / "attendance.csv"),
        "sha256": hashlib.sha256((DATA / "attendance.csv").read_bytes()).hexdigest(),
        "rows": 4, "appended": 4, "skipped_duplicates": 0, "corrected": 0,
        "families_touched": 2,
    }
    # Two identical ASB incidents on one day are two incidents, not a duplicate row.
    assert results["incidents"]["appended"] == 4
    assert app.verify().ok

    types = [r["envelope"]["type"] for r in events(app, "WR-0107")]
    assert types[0] == "Family.Registered"
    assert types.count("Family.MemberAdded") == 3
    assert types.count("Family.AttendanceRecorded") == 3
    absent, _ = (r["payload"] for r in of_type(app, "WR-0107", "Family.AttendanceRecorded")
                       if r["payload"]["member_ref"] == "WR-0107-C1")
    assert absent["sessions_possible"] == 140 and absent["sessions_absent"] == 31
    assert absent["permanent_exclusion"] is False and absent["setting"] == "school"
    sister = next(r["payload"] for r in of_type(app, "WR-0107", "Family.AttendanceRecorded")
                  if r["payload"]["member_ref"] == "WR-0107-C2")
    assert sister["unauthorised_absent"] is None and sister["permanent_exclusion"] is None

    judgement = of_type(app, "WR-0107", "Family.JudgementRecorded")[0]["payload"]
    assert judgement["problem"] == "all"
    assert (judgement["progress"], judgement["sustained"], judgement["intensity_reduced"]) == (
        True, True, False)
    assert judgement["note"] == 'support stepped down to monthly visits, "good progress"'
    attachment = of_type(app, "WR-0212", "Family.Attached")[0]["payload"]
    assert attachment["lead_professional"] is None and attachment["plan_on"] is None
    indicator = of_type(app, "WR-0212", "Family.IndicatorRecorded")[0]["payload"]
    assert indicator["member_ref"] is None and indicator["problem"] == "crime_asb"


def test_each_event_carries_the_file_sha256_its_row_number_and_the_ledger_clock(
    county: LedgerApp,
) -> None:
    sha = hashlib.sha256((DATA / "attendance.csv").read_bytes()).hexdigest()
    ingest(county, "attendance", DATA / "attendance.csv")

    recorded = [r for fam in ("WR-0107", "WR-0212")
                for r in of_type(county, fam, "Family.AttendanceRecorded")]
    assert sorted(r["payload"]["row"] for r in recorded) == [2, 3, 4, 5]
    assert {r["payload"]["file_sha256"] for r in recorded} == {sha}
    assert len({r["payload"]["row_key"] for r in recorded}) == 4
    # row_key = SHA-256 of canonical {"kind", "row"} over the row's parsed values: a stored
    # format (re-ingesting a file years later must find the same keys).
    from claimledger.ledger.canonical import canonical

    for r in recorded:
        row = {c: r["payload"][c] for c in SCHEMAS["attendance"].header}
        assert r["payload"]["row_key"] == hashlib.sha256(
            canonical({"kind": "attendance", "row": row})).hexdigest()
    assert {r["envelope"]["recorded_at"] for r in recorded} == {"2016-05-01T09:00:00.000000Z"}
    assert {r["envelope"]["actor"] for r in recorded} == {county.settings.actor_name}
    registered = of_type(county, "WR-0107", "Family.Registered")[0]["payload"]
    assert registered["row"] == 2
    assert registered["policy_id"] == POLICY


# --- idempotency ----------------------------------------------------------------------------
def test_ingesting_the_same_file_twice_appends_nothing_the_second_time(
    county: LedgerApp,
) -> None:
    first = ingest(county, "attendance", DATA / "attendance.csv")
    before = count_events(county)
    second = ingest(county, "attendance", DATA / "attendance.csv")

    assert first["appended"] == 4
    assert second["appended"] == 0 and second["skipped_duplicates"] == 4
    assert second["families_touched"] == 0
    assert count_events(county) == before


def test_the_same_row_in_another_file_is_skipped_and_only_the_new_row_appended(
    county: LedgerApp, tmp_path: Path,
) -> None:
    ingest(county, "attendance", DATA / "attendance.csv")
    summer = write(tmp_path, "census-summer-2016.csv", ATTENDANCE_HEADER + "\n"
                   # the spring term again, exactly as before (padding is not content)
                   "WR-0107-C1, 2016-01-04 ,2016-03-24,116,9,2,0,no,school,"
                   "school census spring 2016\n"
                   "WR-0107-C1,2016-04-11,2016-07-20,126,3,0,0,no,school,"
                   "school census summer 2016\n")
    result = ingest(county, "attendance", summer)

    assert (result["appended"], result["skipped_duplicates"]) == (1, 1)
    rows = [r["payload"] for r in of_type(county, "WR-0107", "Family.AttendanceRecorded")]
    assert [r["term_start"] for r in rows if r["member_ref"] == "WR-0107-C1"] == [
        "2015-09-01", "2016-01-04", "2016-04-11"]


def test_incidents_repeated_within_a_file_stay_separate_but_reingest_is_still_a_no_op(
    county: LedgerApp,
) -> None:
    first = ingest(county, "incidents", DATA / "incidents.csv")
    again = ingest(county, "incidents", DATA / "incidents.csv")

    assert (first["appended"], again["appended"], again["skipped_duplicates"]) == (4, 0, 4)
    asb = [r for r in of_type(county, "WR-0212", "Family.IncidentRecorded")
           if r["payload"]["kind"] == "asb_incident"]
    assert [r["payload"]["row"] for r in asb] == [2, 3]


# --- corrections ----------------------------------------------------------------------------
def test_a_resupplied_attendance_term_is_a_correction_naming_the_superseded_event(
    county: LedgerApp, tmp_path: Path,
) -> None:
    ingest(county, "attendance", DATA / "attendance.csv")
    original = next(r for r in of_type(county, "WR-0107", "Family.AttendanceRecorded")
                    if r["payload"]["member_ref"] == "WR-0107-C1"
                    and r["payload"]["term_start"] == "2015-09-01")
    original_id = f"family/WR-0107#{original['envelope']['version']}"
    # The school found two sessions wrongly coded as unauthorised absence.
    fixed = write(tmp_path, "census-autumn-2015-v2.csv", ATTENDANCE_HEADER + "\n"
                  "WR-0107-C1,2015-09-01,2015-12-18,140,29,18,1,no,school,"
                  "school census autumn 2015 v2\n")
    result = ingest(county, "attendance", fixed)

    assert (result["appended"], result["corrected"]) == (1, 1)
    correction = of_type(county, "WR-0107", "Family.Corrected")[0]
    payload = correction["payload"]
    assert payload["supersedes"] == original_id
    assert payload["reason"] == "re-supplied in census-autumn-2015-v2.csv line 2"
    replacement = payload["replacement"]
    assert replacement["type"] == "Family.AttendanceRecorded"
    assert (replacement["sessions_absent"], replacement["unauthorised_absent"]) == (29, 18)
    assert replacement["row"] == 2
    assert replacement["file_sha256"] == hashlib.sha256(fixed.read_bytes()).hexdigest()

    # A third version supersedes the correction (the record's current version) ...
    third = write(tmp_path, "census-autumn-2015-v3.csv", ATTENDANCE_HEADER + "\n"
                  "WR-0107-C1,2015-09-01,2015-12-18,140,28,18,1,no,school,"
                  "school census autumn 2015 v3\n")
    ingest(county, "attendance", third)
    corrections = of_type(county, "WR-0107", "Family.Corrected")
    assert corrections[1]["payload"]["supersedes"] == (
        f"family/WR-0107#{correction['envelope']['version']}")
    # ... and the older files, loaded again, change nothing.
    before = count_events(county)
    for path in (DATA / "attendance.csv", fixed):
        assert ingest(county, "attendance", path)["appended"] == 0
    assert count_events(county) == before
    assert county.verify().ok


def test_a_later_identification_date_corrects_the_family_but_its_policy_cannot_change(
    county: LedgerApp, tmp_path: Path,
) -> None:
    moved = write(tmp_path, "families-v2.csv", DESIGN_HEADERS["families"] + "\n"
                  f"WR-0212,Worcestershire,{POLICY},2015-05-18\n")
    assert ingest(county, "families", moved)["corrected"] == 1
    correction = of_type(county, "WR-0212", "Family.Corrected")[0]["payload"]
    assert correction["supersedes"] == "family/WR-0212#1"
    assert correction["replacement"]["identified_on"] == "2015-05-18"

    other_plan = write(tmp_path, "families-v3.csv", DESIGN_HEADERS["families"] + "\n"
                       "WR-0212,Worcestershire,worcestershire/stronger-families-2016,"
                       "2015-05-18\n")
    with pytest.raises(InputError) as e:
        ingest(county, "families", other_plan)
    assert (e.value.line, e.value.column) == (2, "policy_id")
    assert "registered with policy_id" in e.value.reason


# --- bad rows: the first one names file, line, column and reason, and nothing is written ----
BAD_ROWS = [
    # (story, kind, file text, line, column, reason fragment)
    ("a members file given as attendance", "attendance",
     "family_ref,member_ref,role,birth_date\nWR-0107,WR-0107-C1,child,2004-09-02\n",
     1, None, f"expected {ATTENDANCE_HEADER}, found family_ref,member_ref"),
    ("an empty file", "scores", "", 1, None, "expected the header member_ref,instrument"),
    ("a member of a family never registered", "members",
     "family_ref,member_ref,role,birth_date\nWR-0999,WR-0999-C1,child,2004-09-02\n",
     2, "family_ref", "unknown family_ref 'WR-0999': not registered"),
    ("a pupil the ledger does not know", "attendance",
     ATTENDANCE_HEADER + "\nWR-0107-C9,2015-09-01,2015-12-18,140,3,0,0,no,school,\n",
     2, "member_ref", "unknown member_ref 'WR-0107-C9'"),
    ("an indicator for someone outside the family", "indicators",
     DESIGN_HEADERS["indicators"] + "\nWR-0107,WR-0212-C1,crime_asb,asb,2015-04-30,"
     "identification,police\n",
     2, "member_ref", "not a member of family 'WR-0107'"),
    ("a British date", "attendance",
     ATTENDANCE_HEADER + "\nWR-0107-C1,01/09/2015,2015-12-18,140,3,0,0,no,school,\n",
     2, "term_start", "bad date '01/09/2015': expected an ISO date YYYY-MM-DD"),
    ("a date that does not exist", "care_status",
     DESIGN_HEADERS["care_status"] + "\nWR-0107-C2,cp,2015-02-30,,\n",
     2, "start_on", "bad date '2015-02-30'"),
    ("a term that ends before it starts", "attendance",
     ATTENDANCE_HEADER + "\nWR-0107-C1,2015-12-18,2015-09-01,140,3,0,0,no,school,\n",
     2, "term_end", "term_end 2015-09-01 is before term_start 2015-12-18"),
    ("a benefit claim that ends before it starts", "employment",
     DESIGN_HEADERS["employment"] + "\nWR-0107-M,benefit_claim,JSA,2015-03-01,2015-02-01,,\n",
     2, "end_on", "end_on 2015-02-01 is before start_on 2015-03-01"),
    ("a negative count", "attendance",
     ATTENDANCE_HEADER + "\nWR-0107-C1,2015-09-01,2015-12-18,140,-3,0,0,no,school,\n",
     2, "sessions_absent", "negative count -3"),
    ("more absences than sessions", "attendance",
     ATTENDANCE_HEADER + "\nWR-0107-C1,2015-09-01,2015-12-18,140,141,0,0,no,school,\n",
     2, "sessions_absent", "absent more sessions than possible: sessions_absent 141 is more "
     "than sessions_possible 140"),
    ("more unauthorised absences than absences", "attendance",
     ATTENDANCE_HEADER + "\nWR-0107-C1,2015-09-01,2015-12-18,140,10,11,0,no,school,\n",
     2, "unauthorised_absent", "unauthorised_absent 11 is more than sessions_absent 10"),
    ("a setting the census does not use", "attendance",
     ATTENDANCE_HEADER + "\nWR-0107-C1,2015-09-01,2015-12-18,140,3,0,0,no,home,\n",
     2, "setting", "unknown setting 'home': expected one of school, pru, alternative, none"),
    ("an incident kind outside the list", "incidents",
     DESIGN_HEADERS["incidents"] + "\nWR-0212-C1,2015-02-14,arrest,no,police\n",
     2, "kind", "unknown kind 'arrest': expected one of proven_offence, asb_incident"),
    ("a judgement on a problem that is not a headline", "judgements",
     DESIGN_HEADERS["judgements"] + "\nWR-0107,2016-03-31,LW-Ellis,housing,yes,yes,yes,\n",
     2, "problem", "unknown problem 'housing': expected one of crime_asb, education, "
     "children_need_help, worklessness, domestic_abuse, health, all"),
    ("a member listed twice", "members",
     DESIGN_HEADERS["members"] + "\nWR-0212,WR-0212-C2,child,2009-01-01\n"
     "WR-0212,WR-0212-C2,child,2009-01-02\n",
     3, "member_ref", "duplicate member 'WR-0212-C2': already on line 2"),
    ("a member already in another family", "members",
     DESIGN_HEADERS["members"] + "\nWR-0212,WR-0107-C1,child,2004-09-02\n",
     2, "member_ref", "duplicate member 'WR-0107-C1': already in family 'WR-0107'"),
    ("a member re-supplied with another birth date", "members",
     DESIGN_HEADERS["members"] + "\nWR-0107,WR-0107-C1,child,2004-09-03\n",
     2, "member_ref", "with other details (role child, birth_date 2004-09-02)"),
    ("a flag that is neither yes nor no", "judgements",
     DESIGN_HEADERS["judgements"] + "\nWR-0107,2016-03-31,LW-Ellis,all,yes,maybe,no,\n",
     2, "sustained", "bad yes/no flag 'maybe': expected yes or no"),
    ("a fractional session count", "attendance",
     ATTENDANCE_HEADER + "\nWR-0107-C1,2015-09-01,2015-12-18,140,3.5,0,0,no,school,\n",
     2, "sessions_absent", "not an integer: '3.5'"),
    ("a score written as a word", "scores",
     DESIGN_HEADERS["scores"] + "\nWR-0107-M,wemwbs,2015-06-10,high,\n",
     2, "score", "not an integer: 'high'"),
    ("a required cell left empty", "attendance",
     ATTENDANCE_HEADER + "\nWR-0107-C1,2015-09-01,2015-12-18,,3,0,0,no,school,\n",
     2, "sessions_possible", "missing value: sessions_possible is required"),
    ("a row with a cell missing", "scores",
     DESIGN_HEADERS["scores"] + "\nWR-0107-M,wemwbs,2015-06-10,40\n",
     2, None, "expected 5 cells"),
    ("one term supplied twice with different figures", "attendance",
     ATTENDANCE_HEADER + "\nWR-0107-C1,2015-09-01,2015-12-18,140,3,0,0,no,school,\n"
     "WR-0107-C1,2015-09-01,2015-12-18,140,5,0,0,no,school,\n",
     3, None, "conflicts with line 2: same member_ref, term_start, term_end"),
]


@pytest.mark.parametrize(("story", "kind", "text", "line", "column", "reason"), BAD_ROWS,
                         ids=[b[0] for b in BAD_ROWS])
def test_a_bad_row_names_file_line_column_and_reason_and_writes_nothing(
    sqlite_county: LedgerApp, tmp_path: Path, story: str, kind: str, text: str, line: int,
    column: str | None, reason: str,
) -> None:
    county = sqlite_county
    path = write(tmp_path, f"{kind}.csv", text)
    before = count_events(county)
    with pytest.raises(InputError) as e:
        ingest(county, kind, path)
    err = e.value
    assert (err.file, err.line, err.column) == (str(path), line, column), story
    assert reason in err.reason, err.reason
    assert err.exit_code == 2
    assert str(err).startswith(f"{path}:{line}")
    assert count_events(county) == before


def test_the_first_bad_row_is_reported_whether_it_is_a_bad_cell_or_a_bad_reference(
    county: LedgerApp, tmp_path: Path,
) -> None:
    good = "WR-0107-C1,2015-09-01,2015-12-18,140,3,0,0,no,school,\n"
    unknown = "WR-0107-C9,2015-09-01,2015-12-18,140,3,0,0,no,school,\n"
    bad_date = "WR-0107-C1,2016-01-04,2016-13-24,116,3,0,0,no,school,\n"
    ref_first = write(tmp_path, "a.csv", ATTENDANCE_HEADER + "\n" + good + unknown + bad_date)
    cell_first = write(tmp_path, "b.csv", ATTENDANCE_HEADER + "\n" + good + bad_date + unknown)

    with pytest.raises(InputError) as e:
        ingest(county, "attendance", ref_first)
    assert (e.value.line, e.value.column) == (3, "member_ref")
    with pytest.raises(InputError) as e:
        ingest(county, "attendance", cell_first)
    assert (e.value.line, e.value.column) == (3, "term_end")


def test_a_file_whose_last_row_is_bad_leaves_the_database_byte_for_byte_unchanged(
    county: LedgerApp, tmp_path: Path,
) -> None:
    lines = (DATA / "attendance.csv").read_text().splitlines()
    bad = write(tmp_path, "census.csv", "\n".join(
        [*lines, "WR-0212-C1,2016-01-04,2016-03-24,116,9,2,0,perhaps,pru,census"]) + "\n")
    before = fingerprint(county)
    with pytest.raises(InputError) as e:
        ingest(county, "attendance", bad)
    assert (e.value.line, e.value.column) == (6, "permanent_exclusion")
    assert fingerprint(county) == before
    # The good rows alone load: nothing of the failed attempt is in the way.
    good = write(tmp_path, "census-fixed.csv", "\n".join(lines) + "\n")
    assert ingest(county, "attendance", good)["appended"] == 4


def test_a_families_file_whose_last_row_is_bad_leaves_no_family_and_no_family_key_behind(
    county: LedgerApp, tmp_path: Path,
) -> None:
    bad = write(tmp_path, "families-2016.csv", DESIGN_HEADERS["families"] + "\n"
                f"WR-0301,Worcestershire,{POLICY},2016-02-01\n"
                f"WR-0302,Worcestershire,{POLICY},2016-02-30\n")
    before = fingerprint(county)
    with pytest.raises(InputError) as e:
        ingest(county, "families", bad)
    assert (e.value.line, e.value.column) == (3, "identified_on")
    assert fingerprint(county) == before
    assert events(county, "WR-0301") == []


def test_a_bom_and_blank_lines_from_a_spreadsheet_export_are_tolerated(
    county: LedgerApp, tmp_path: Path,
) -> None:
    text = ("\ufeff" + DESIGN_HEADERS["scores"]
            + "\r\nWR-0107-M,wemwbs,2015-06-10,41,\r\n\r\n,,,,\r\n")
    path = write(tmp_path, "scores.csv", text)
    assert ingest(county, "scores", path)["appended"] == 1


def test_an_unknown_kind_or_a_missing_file_is_refused(county: LedgerApp, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown ingest kind 'pupils'"):
        ingest(county, "pupils", DATA / "members.csv")
    with pytest.raises(InputError, match="cannot read file") as e:
        ingest(county, "scores", tmp_path / "absent.csv")
    assert e.value.exit_code == 2


def test_progress_is_reported_row_by_row_in_chunks(county: LedgerApp, tmp_path: Path) -> None:
    rows = "".join(f"WR-0107-M,star,2015-06-{d:02d},{d},\n" for d in range(1, 31))
    extra = "".join(f"WR-0107-M,star-{n},2015-07-01,{n},\n" for n in range(2470))
    path = write(tmp_path, "scores.csv", DESIGN_HEADERS["scores"] + "\n" + rows + extra)
    seen: list[int] = []
    result = ingest(county, "scores", path, progress=seen.append)
    assert sum(seen) == result["rows"] == 2500
    assert seen == [1000, 1000, 500]


def test_the_fingerprint_used_for_atomicity_does_see_an_append(county: LedgerApp) -> None:
    """Guards the atomicity test: an unchanged fingerprint must mean nothing was written."""
    before = fingerprint(county)
    ingest(county, "scores", DATA / "scores.csv")
    assert fingerprint(county) != before


# --- what a file reads, and what it writes ---------------------------------------------------
def opened_records(app: LedgerApp, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every record the app decrypts from here on (the envelope of each, in order)."""
    seen: list[dict[str, Any]] = []
    real = app.keystore.open_record

    def spy(rec: dict[str, Any]) -> dict[str, Any]:
        if "sealed" in rec:
            seen.append(rec["envelope"])
        return real(rec)

    monkeypatch.setattr(app.keystore, "open_record", spy)
    return seen


def test_a_later_file_opens_only_its_own_kind_and_what_it_checks_not_the_family_history(
    make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file costs what it touches, not the history behind it: after a year of data, the
    spring review's one judgement decrypts one record of WR-0107, not its eighteen."""
    app = make_app()
    for kind in ORDER:
        ingest(app, kind, DATA / f"{kind}.csv")
    # WR-0107's stream now holds a registration, three members and a year of data matches.
    assert len(events(app, "WR-0107")) == 18
    opened = opened_records(app, monkeypatch)
    # The spring review: a second judgement for WR-0107 only.
    spring = write(tmp_path, "judgements-2016-06.csv", DESIGN_HEADERS["judgements"] + "\n"
                   "WR-0107,2016-06-30,LW-Ellis,all,yes,yes,yes,\n")
    assert ingest(app, "judgements", spring)["appended"] == 1

    # Its one earlier judgement (a correction or a repeat?) is all that is decrypted; the
    # head, read from the clear envelope, says the family is registered (a family's stream
    # begins with its registration).
    assert sorted((e["stream"], e["type"]) for e in opened) == [
        ("family/WR-0107", "Family.JudgementRecorded")]

    # A member-keyed file, in a new command, opens the ledger's member index (to find the
    # pupil's family) and that family's earlier records of the same kind, nothing else.
    opened.clear()
    fresh = open_app(app.settings)
    opened = opened_records(fresh, monkeypatch)
    summer = write(tmp_path, "census-summer-2016.csv", ATTENDANCE_HEADER + "\n"
                   "WR-0107-C1,2016-04-11,2016-07-20,126,3,0,0,no,school,census summer 2016\n")
    assert ingest(fresh, "attendance", summer)["appended"] == 1
    assert sorted({e["type"] for e in opened}) == [
        "Family.AttendanceRecorded", "Family.MemberAdded"]
    assert sum(e["type"] == "Family.MemberAdded" for e in opened) == 5  # the whole index
    assert {e["stream"] for e in opened if e["type"] == "Family.AttendanceRecorded"} == {
        "family/WR-0107"}
    # The same command's next file reads the index it holds: no member is opened again.
    opened.clear()
    spring = write(tmp_path, "scores-2016.csv", DESIGN_HEADERS["scores"] + "\n"
                   "WR-0107-M,wemwbs,2016-06-01,52,LW-Khan\n")
    assert ingest(fresh, "scores", spring)["appended"] == 1
    assert {e["type"] for e in opened} <= {"Family.ScoreRecorded"}
    assert app.verify().ok


def corrected_county(app: LedgerApp, tmp_path: Path) -> LedgerApp:
    """Every sample file loaded, then WR-0107-C1's autumn 2015 term re-supplied with other
    values: a Corrected event in the ledger."""
    for kind in ORDER:
        ingest(app, kind, DATA / f"{kind}.csv")
    fixed = write(tmp_path, "census-autumn-2015-v2.csv", ATTENDANCE_HEADER + "\n"
                  "WR-0107-C1,2015-09-01,2015-12-18,140,29,18,1,no,school,census v2\n")
    assert ingest(app, "attendance", fixed)["corrected"] == 1
    return app


def test_what_ingest_knows_of_a_family_is_what_replaying_its_whole_stream_gives(
    make_app: MakeApp, tmp_path: Path,
) -> None:
    """Ingest reads a family's head and a few of its events instead of replaying it: the
    version and hash it appends after, its registration and members must be the aggregate's."""
    from claimledger.domain.base import ChainedAggregate
    from claimledger.domain.family import Family
    from claimledger.ingest.importer import FilePlanner

    # The premise: only these Family events change the aggregate beyond version and head.
    stateful = {name for name, cls in vars(Family).items() if isinstance(cls, type)
                and issubclass(cls, ChainedAggregate.Event)
                and cls.apply is not ChainedAggregate.Event.apply}
    assert stateful == {"MemberAdded", "Erased"}  # Registered sets state through __init__

    app = corrected_county(make_app(), tmp_path)
    refs = {"WR-0107", "WR-0212"}
    batch = FilePlanner(app, SCHEMAS["indicators"], tmp_path / "x.csv", "0" * 64)
    batch.read(refs)  # indicators: the kind that checks members
    families = FilePlanner(app, SCHEMAS["families"], tmp_path / "y.csv", "0" * 64)
    families.read(refs)  # families: the kind that checks a re-registration
    for ref, state in batch.families.items():
        replayed = app.find(Family, ref)
        assert replayed is not None
        assert state.exists
        assert (state.version, state.head_hash) == (replayed.version, replayed.head_hash)
        assert state.version == len(events(app, ref))
        assert state.members == set(replayed.members)
        assert not state.erased and not replayed.erased
        registered = families.families[ref].registered
        assert registered is not None
        assert {k: registered[k] for k in ("family_ref", "authority", "policy_id",
                                           "identified_on")} == {
            "family_ref": replayed.family_ref, "authority": replayed.authority,
            "policy_id": replayed.policy_id, "identified_on": replayed.identified_on}


def test_a_file_read_a_row_at_a_time_writes_what_it_writes_read_at_once(
    make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ingest reads the families a stretch of rows names when it comes to them and drops
    them after the last line naming them: read one row at a time (each family read alone,
    when its first row comes, and kept across the rows of others until its last), the
    county, its corrected term and a second load of every file (appending nothing) leave
    exactly the records a reading of the whole file at once leaves."""
    from claimledger.ingest import importer

    whole = open_app(Settings(db=f"sqlite:///{tmp_path}/whole.sqlite", key_dir=tmp_path / "w",
                              now=NOW, actor="admin1"), must_exist=False)
    whole.init("Worcestershire")
    corrected_county(whole, tmp_path)
    monkeypatch.setattr(importer, "BLOCK", 1)
    by_row = corrected_county(make_app(), tmp_path)
    again = [ingest(by_row, kind, DATA / f"{kind}.csv") for kind in ORDER]
    assert sum(r["appended"] for r in again) == 0
    assert all(r["skipped_duplicates"] == r["rows"] > 0 for r in again)
    assert _content(by_row) == _content(whole) and _content(whole)
    assert by_row.verify().ok


def test_each_record_ingest_writes_is_the_one_the_family_aggregate_and_mapper_would_write(
    county: LedgerApp, tmp_path: Path,
) -> None:
    """Ingest builds stored records directly, without an event object per row: each must
    equal, field for field, what Family would trigger after the same head, with the same
    clock, actor and salt, and SealedMapper would store (ciphertexts differ by nonce only)."""
    from claimledger.application import parse_moment
    from claimledger.domain.base import AppendContext
    from claimledger.domain.family import EVENT_FOR_KIND, Family
    from claimledger.ledger.envelope import stream_uuid

    ingest(county, "attendance", DATA / "attendance.csv")
    fixed = write(tmp_path, "census-autumn-2015-v2.csv", ATTENDANCE_HEADER + "\n"
                  "WR-0107-C1,2015-09-01,2015-12-18,140,29,18,1,no,school,census v2\n")
    ingest(county, "attendance", fixed)

    checked = set()
    stored = county.recorder.select_events(stream_uuid("family/WR-0107"))
    for s in stored:
        rec = county.open_record(s.state)
        env = rec["envelope"]
        ctx = AppendContext(env["actor"], parse_moment(env["recorded_at"]),
                            new_salt=lambda salt=rec["salt"]: bytes.fromhex(salt))
        event_class = next(c for c in (*EVENT_FOR_KIND.values(), Family.Corrected)
                           if c.__qualname__ == env["type"])
        if env["version"] == 1:
            family = Family.register(ctx, **rec["payload"])
        else:
            family = county.repository.get(s.originator_id, version=env["version"] - 1)
            family.record(event_class, ctx, **rec["payload"])
        expected = county.mapper.to_stored_event(family.pending_events[-1])
        assert (expected.originator_id, expected.originator_version, expected.topic) == (
            s.originator_id, s.originator_version, s.topic)
        assert county.open_record(expected.state) == rec
        checked.add(env["type"])
    assert checked == {"Family.Registered", "Family.MemberAdded",
                       "Family.AttendanceRecorded", "Family.Corrected"}


def commits_first(monkeypatch: pytest.MonkeyPatch, app: LedgerApp, other: LedgerApp,
                  kind: str, path: Path) -> None:
    """``other`` ingests ``path`` between the read of ``app``'s next file and its insert
    (``app`` ingests in this process: the file is small)."""
    real = app.bulk_insert

    @contextlib.contextmanager
    def after_the_other_writer(**kw: Any) -> Any:
        ingest(other, kind, path)
        with real(**kw) as bulk:
            yield bulk

    monkeypatch.setattr(app, "bulk_insert", after_the_other_writer)


def test_another_writer_appending_to_the_family_first_makes_the_file_a_conflict(
    county: LedgerApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two officers load data for WR-0107 at once: the one whose insert comes second finds
    the versions it built taken, and nothing of its file is written."""
    from claimledger.errors import ConflictError

    other = open_app(county.settings)
    scores = write(tmp_path, "scores-officer-b.csv", DESIGN_HEADERS["scores"] + "\n"
                   "WR-0107-M,wemwbs,2015-07-01,44,LW-Khan\n")
    commits_first(monkeypatch, county, other, "scores", scores)
    before = count_events(county)
    with pytest.raises(ConflictError):
        ingest(county, "attendance", DATA / "attendance.csv")
    assert count_events(county) == before + 1  # the other writer's score, nothing else
    monkeypatch.undo()
    assert ingest(county, "attendance", DATA / "attendance.csv")["appended"] == 4  # retried
    assert county.verify().ok


def test_two_writers_registering_the_same_new_family_at_once_conflict_on_its_key(
    county: LedgerApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The other writer's registration of WR-0301 (its data key and its events, in one
    transaction) lands after this file read the ledger and before it writes: this file,
    which made its own key for WR-0301, is refused, leaving the other's key and event, and
    its own key is forgotten, so a retry reads the family with the other's key."""
    from claimledger.errors import ConflictError

    other = open_app(county.settings)
    families = write(tmp_path, "families-2016.csv", DESIGN_HEADERS["families"] + "\n"
                     f"WR-0301,Worcestershire,{POLICY},2016-02-01\n")
    real = county.bulk_insert

    @contextlib.contextmanager
    def after_the_other_writer(**kw: Any) -> Any:
        ingest(other, "families", families)  # commits between this file's read and its write
        with real(**kw) as bulk:
            yield bulk

    monkeypatch.setattr(county, "bulk_insert", after_the_other_writer)
    with pytest.raises(ConflictError, match="another writer"):
        ingest(county, "families", families)
    monkeypatch.undo()
    assert [r["payload"]["row"] for r in of_type(county, "WR-0301", "Family.Registered")] == [2]
    assert len(events(county, "WR-0301")) == 1
    assert ingest(county, "families", families)["appended"] == 0  # retried: already there


# --- a large file: sealed here, encrypted and inserted by a writer process -------------------
@pytest.fixture
def writer_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file, however small, goes through the writer process, a few events at a time."""
    from claimledger.ingest import importer

    monkeypatch.setattr(importer, "WRITER_PROCESS_ABOVE", 0)
    monkeypatch.setattr(importer, "SINK_CHUNK", 3)


def _content(app: LedgerApp) -> list[tuple[Any, ...]]:
    """Every family event's stream, version, type and payload (salts and ciphertexts differ)."""
    out = []
    for ref in sorted({r["family_ref"] for r in
                       (SCHEMAS["families"].parse(line.split(",")) for line in
                        (DATA / "families.csv").read_text().splitlines()[1:])}):
        for rec in events(app, ref):
            env = rec["envelope"]
            out.append((env["stream"], env["version"], env["type"], rec["payload"]))
    return out


def test_a_county_through_the_writer_process_is_the_county_loaded_in_one_process(
    make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer_process: None,
) -> None:
    """A large file's events are encrypted and inserted by a second process while this one
    seals: the ledger it leaves must hold exactly the records one process would write, with
    every new family's data key (verify opens every payload), and must verify."""
    from claimledger.ingest import importer

    two = make_app()
    for kind in ORDER:
        ingest(two, kind, DATA / f"{kind}.csv")
    monkeypatch.setattr(importer, "WRITER_PROCESS_ABOVE", 10**9)
    one = open_app(Settings(db=f"sqlite:///{tmp_path}/one.sqlite", key_dir=tmp_path / "one",
                            now=NOW, actor="admin1"), must_exist=False)
    one.init("Worcestershire")
    for kind in ORDER:
        ingest(one, kind, DATA / f"{kind}.csv")
    assert _content(two) == _content(one) and _content(one)
    result = two.verify()
    assert result.ok and result.unchecked_payloads == 0
    assert result.events == one.verify().events


def test_a_conflict_the_writer_process_meets_writes_nothing_of_the_file(
    county: LedgerApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer_process: None,
) -> None:
    """Another officer's score for WR-0107 lands after this attendance file was read: the
    writer process finds the version taken, says so, and nothing of the file is written."""
    from claimledger.errors import ConflictError
    from claimledger.ingest import importer

    other = open_app(county.settings)
    scores = write(tmp_path, "scores-officer-b.csv", DESIGN_HEADERS["scores"] + "\n"
                   "WR-0107-M,wemwbs,2015-07-01,44,LW-Khan\n")
    real = importer.FilePlanner.load

    def after_the_other_writer(self: Any, rows: Any) -> None:
        real(self, rows)  # this file has read the ledger ...
        if self.kind == "attendance":  # ... and the other writer commits first
            ingest(other, "scores", scores)

    monkeypatch.setattr(importer.FilePlanner, "load", after_the_other_writer)
    before = count_events(county)
    with pytest.raises(ConflictError, match="another writer"):
        ingest(county, "attendance", DATA / "attendance.csv")
    assert count_events(county) == before + 1  # the other writer's score, nothing else
    monkeypatch.setattr(importer.FilePlanner, "load", real)
    assert ingest(county, "attendance", DATA / "attendance.csv")["appended"] == 4  # retried
    assert county.verify().ok


def test_a_failure_here_while_the_writer_process_inserts_rolls_the_file_back(
    county: LedgerApp, monkeypatch: pytest.MonkeyPatch, writer_process: None,
) -> None:
    """Handing events over stops part way (here: an error on the fourth of four events),
    after the writer process inserted the first chunk of three: it is told to roll back, and
    the ledger holds every event and key it held, byte for byte, and nothing else."""
    from claimledger.ingest import importer

    real = importer.FilePlanner.seal_into
    calls = 0

    def failing(self: Any, sink: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            assert len(self.plans) == 1  # the fourth event, the first three already sent
            raise RuntimeError("disk on fire")
        real(self, sink)

    before = contents(county)
    monkeypatch.setattr(importer.FilePlanner, "seal_into", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        ingest(county, "attendance", DATA / "attendance.csv")
    assert calls == 2
    assert contents(county) == before
    monkeypatch.setattr(importer.FilePlanner, "seal_into", real)
    assert ingest(county, "attendance", DATA / "attendance.csv")["appended"] == 4


def test_a_large_file_whose_last_row_is_bad_leaves_the_ledger_byte_for_byte_unchanged(
    county: LedgerApp, tmp_path: Path, writer_process: None,
) -> None:
    """A large file is sealed and inserted as its rows are checked; its last row names a
    pupil no family has: the writer process has inserted the earlier rows by then, rolls
    them back, and the ledger holds every event and key it held, byte for byte, and nothing
    else. (The files themselves may differ: SQLite checkpoints its WAL into the database
    file when the writer's connection, the last one open, closes.)"""
    good = (DATA / "attendance.csv").read_text().splitlines()
    bad = write(tmp_path, "census-with-a-stranger.csv", "\n".join(
        [*good, "WR-9999-C1,2015-09-01,2015-12-18,140,2,0,0,no,school,census"]) + "\n")
    before = contents(county)
    with pytest.raises(InputError) as e:
        ingest(county, "attendance", bad)
    assert (e.value.line, e.value.column) == (len(good) + 1, "member_ref")
    assert contents(county) == before
    assert ingest(county, "attendance", DATA / "attendance.csv")["appended"] == 4


_CELLS = st.sampled_from(["", " ", "yes", "No", "YES", "maybe", "12", " 7 ", "-3", "+4", "0",
                          "x1", "2015-09-01", "2015-13-01", "2016-02-30", " 2016-01-04 ",
                          "school", "asb", "offence", "child", "adult", "esa", "all", "W-1"])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(SCHEMAS)), st.data())
def test_the_unrolled_row_parser_is_the_plain_loop(kind: str, data: st.DataObject) -> None:
    """Each schema parses rows with its columns' loop written out as straight code: for any
    row, it must give the plain loop's values, or name the same bad column for the same
    reason."""
    from claimledger.ingest.schemas import BadCell

    schema = SCHEMAS[kind]
    cells = data.draw(st.lists(_CELLS, min_size=len(schema.header),
                               max_size=len(schema.header)))

    def outcome(parse: Callable[[list[str]], Any]) -> Any:
        try:
            return parse(list(cells))
        except BadCell as e:
            return (e.column, e.reason)

    assert outcome(schema.compiled) == outcome(schema.reference_parse)


def test_one_commands_member_index_follows_what_other_writers_do_between_its_files(
    county: LedgerApp, tmp_path: Path,
) -> None:
    """A command loading several files keeps the member index between them. Meanwhile
    another officer adds a pupil to WR-0212 and another erases WR-0107: the next file
    finds the new pupil, and cannot name WR-0107's."""
    from claimledger.protection import erase

    ingest(county, "attendance", DATA / "attendance.csv")  # the index is now held
    other = open_app(county.settings)
    ingest(other, "members", write(tmp_path, "new-pupil.csv", DESIGN_HEADERS["members"] + "\n"
                                   "WR-0212,WR-0212-C9,child,2009-01-05\n"))
    census = write(tmp_path, "census-2016.csv", ATTENDANCE_HEADER + "\n"
                   "WR-0212-C9,2016-01-04,2016-03-24,110,4,0,0,no,school,census\n")
    assert ingest(county, "attendance", census)["appended"] == 1

    erase(other, "WR-0107", "subject access: erasure request")
    late = write(tmp_path, "census-late.csv", ATTENDANCE_HEADER + "\n"
                 "WR-0107-C1,2016-01-04,2016-03-24,110,4,0,0,no,school,census\n")
    with pytest.raises(InputError, match="unknown member_ref 'WR-0107-C1'"):
        ingest(county, "attendance", late)
    assert county.verify().ok


def test_a_months_files_load_in_one_command_each_whole_and_a_bad_one_stops_it(
    tmp_path: Path, run: Callable[..., tuple[int, str, str]],
) -> None:
    """`ingest KIND FILE KIND FILE ...` loads the files in order, each in its own
    transaction; the bad one is named and stops the command, the ones before it stay."""
    from county import County

    county = County(tmp_path, run)
    county.init("Worcestershire")
    files = [(k, str(DATA / f"{k}.csv")) for k in ("families", "members", "attendance")]
    _, out, _ = county.cli("ingest", *[x for pair in files for x in pair], "--json",
                           now=NOW, actor="admin1")
    assert [(f["kind"], f["appended"]) for f in out["files"]] == [
        ("families", 2), ("members", 5), ("attendance", 4)]

    bad = write(tmp_path, "census-bad.csv", ATTENDANCE_HEADER + "\n"
                "WR-9999-C1,2016-01-04,2016-03-24,110,4,0,0,no,school,census\n")
    code, _, err = county.cli("ingest", "scores", str(DATA / "scores.csv"), "attendance",
                              str(bad), "judgements", str(DATA / "judgements.csv"),
                              now=NOW, actor="admin1", ok=False)
    assert code == 2 and f"{bad}:2 column member_ref: unknown member_ref 'WR-9999-C1'" in err
    _, out, _ = county.cli("ingest", "scores", str(DATA / "scores.csv"), "judgements",
                           str(DATA / "judgements.csv"), "--json", now=NOW, actor="admin1")
    assert out["files"][0]["appended"] == 0  # the scores landed before the bad file
    assert out["files"][1]["appended"] > 0  # the judgements after it did not
    code, _, err = county.cli("ingest", "scores", now=NOW, actor="admin1", ok=False)
    assert code == 2 and "KIND FILE pairs" in err


CELL = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(CELL, min_size=1, max_size=4), max_size=6),
       st.sampled_from(["\n", "\r\n", "\r"]), st.sampled_from(["attendance", "indicators"]))
def test_the_references_read_before_parsing_are_those_the_csv_reader_finds(rows, end, kind):
    """A file's families are read before its rows are parsed, from each row's first cell
    cut out by its line's commas until the first quote: each (line, reference) read from the
    file must be exactly the first cell, and the row's first line, the CSV reader gives,
    whatever the cells hold (commas, quotes, line breaks of every kind, odd white space)."""
    import csv
    import io
    import tempfile

    from claimledger.ingest.rows import FileLines, ref_cells

    out = io.StringIO()
    csv.writer(out, lineterminator=end).writerows([["header"], *rows])
    text = out.getvalue()
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader)
    want, start = [], reader.line_num + 1
    for cells in reader:
        if cells and cells[0].strip():
            want.append((start, cells[0].strip()))
        start = reader.line_num + 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.csv"
        path.write_bytes(text.encode())
        lines = FileLines(str(path), path)
        assert list(ref_cells(SCHEMAS[kind], lines)) == want
    assert lines.sha256 == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("through_writer", [False, True], ids=["in-process", "writer"])
def test_every_event_ingest_writes_has_its_own_salt_and_nonce(
    county: LedgerApp, monkeypatch: pytest.MonkeyPatch, through_writer: bool,
) -> None:
    """Salts and AES-GCM nonces are drawn for a chunk of events at once: no two events may
    share either (a nonce used twice under one family's key would give its payloads away)."""
    import base64

    from claimledger.ingest import importer
    from claimledger.ledger.canonical import loads

    if through_writer:
        monkeypatch.setattr(importer, "WRITER_PROCESS_ABOVE", 0)
        monkeypatch.setattr(importer, "SINK_CHUNK", 3)
    ingest(county, "attendance", DATA / "attendance.csv")
    salts, nonces = [], []
    for row in county.rows():
        rec = loads(row.state)
        if "sealed" in rec:
            nonces.append(base64.b64decode(rec["sealed"])[:12])
            salts.append(county.open_record(row.state)["salt"])
    assert len(nonces) > 10
    assert len(set(nonces)) == len(nonces) and len(set(salts)) == len(salts)


@pytest.mark.parametrize("through_writer", [False, True], ids=["in-process", "writer"])
def test_one_command_keeps_what_it_wrote_for_its_next_file_until_another_writer_comes(
    county: LedgerApp, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, through_writer: bool,
) -> None:
    """One command loading several files reads each family's head once: the next file takes
    the heads (and members) the previous one left, as long as the ledger still ends where
    that file ended. An officer appending to a family in between makes the command read
    the heads again, and every chain still links: the ledger verifies."""
    from claimledger.ingest import importer

    if through_writer:
        monkeypatch.setattr(importer, "WRITER_PROCESS_ABOVE", 0)
        monkeypatch.setattr(importer, "SINK_CHUNK", 3)
    asked: list[int] = []
    real = importer.LedgerView.heads

    def heads(self: Any, ids: list[Any]) -> Any:
        if self.datastore is county.recorder.datastore:  # this command's reads only
            asked.append(len(ids))
        return real(self, ids)

    monkeypatch.setattr(importer.LedgerView, "heads", heads)
    decrypted = []
    real_open = county.keystore.open_record
    monkeypatch.setattr(county.keystore, "open_record",
                        lambda rec: decrypted.append(rec["envelope"]["type"]) or real_open(rec))

    ingest(county, "attendance", DATA / "attendance.csv")  # after families and members
    assert asked == [0] and "Family.MemberAdded" not in decrypted
    ingest(county, "scores", DATA / "scores.csv")
    assert asked == [0, 0]

    other = open_app(county.settings)  # another officer's score for WR-0107, in between
    ingest(other, "scores", write(tmp_path, "scores-b.csv", DESIGN_HEADERS["scores"] + "\n"
                                  "WR-0107-M,wemwbs,2015-07-02,45,LW-Khan\n"))
    spring = write(tmp_path, "census-spring-2016.csv", ATTENDANCE_HEADER + "\n"
                   "WR-0107-C1,2016-01-04,2016-03-24,110,4,1,0,no,school,census\n")
    assert ingest(county, "attendance", spring)["appended"] == 1  # after the officer's score
    assert asked[2] > 0  # read again
    assert ingest(county, "attendance", spring)["appended"] == 0
    assert asked[3] == 0  # the same family: kept from the file before
    result = county.verify()
    assert result.ok, result.reasons


def test_another_writer_between_a_files_read_and_its_insert_is_not_taken_for_this_command(
    county: LedgerApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """This command read both families' heads; while its scores file for WR-0212 is being
    inserted, another officer's score for WR-0107 commits first. The file still goes in
    (another family), but the command must not take the ledger's end for its own: its next
    file, for WR-0107, reads that family's head again, chains to the officer's score, and
    the ledger verifies."""
    other = open_app(county.settings)
    theirs = write(tmp_path, "scores-officer-b.csv", DESIGN_HEADERS["scores"] + "\n"
                   "WR-0107-M,wemwbs,2015-07-01,44,LW-Khan\n")
    ours = write(tmp_path, "scores-0212.csv", DESIGN_HEADERS["scores"] + "\n"
                 "WR-0212-F,wemwbs,2015-07-01,39,LW-Khan\n")
    commits_first(monkeypatch, county, other, "scores", theirs)
    assert ingest(county, "scores", ours)["appended"] == 1
    monkeypatch.undo()
    later = write(tmp_path, "scores-0107.csv", DESIGN_HEADERS["scores"] + "\n"
                  "WR-0107-M,wemwbs,2015-10-01,47,LW-Khan\n")
    assert ingest(county, "scores", later)["appended"] == 1
    assert [r["payload"]["score"] for r in of_type(county, "WR-0107", "Family.ScoreRecorded")
            ] == [44, 47]
    result = county.verify()
    assert result.ok, result.reasons
