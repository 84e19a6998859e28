"""A large data-match file: all or nothing, once only, in memory that does not grow with it.

The files are the memory benchmark's (scripts/bench_ingest_memory.py): families of three
children, twenty terms of attendance each, a family's rows together.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from claimledger.application import LedgerApp
from claimledger.errors import InputError
from claimledger.ingest import ingest
from conftest import load_script


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script("bench_ingest_memory")


def count_events(app: LedgerApp) -> int:
    return sum(1 for _ in app.rows())


def test_a_200k_row_census_with_a_bad_row_near_its_end_writes_nothing_then_loads_once(
    new_ledger: Callable[..., LedgerApp], tmp_path: Path, bench: ModuleType,
) -> None:
    """A county's 200,000-row attendance census whose 199,990th row has a misspelt date is
    refused whole: the error names that line and column, and the ledger holds what it held.
    The corrected file then loads every row, and loading it again appends nothing."""
    rows = 200_000
    app = new_ledger(authority=bench.AUTHORITY)
    paths = bench.write_files(tmp_path, rows)
    ingest(app, "families", paths["families"])
    ingest(app, "members", paths["members"])
    lines = paths["attendance"].read_text().splitlines(keepends=True)
    bad_line = 199_991  # the header is line 1
    cells = lines[bad_line - 1].split(",")
    cells[1] = "2015-13-01"
    lines[bad_line - 1] = ",".join(cells)
    bad = tmp_path / "census-misspelt.csv"
    bad.write_text("".join(lines))
    before = count_events(app)

    with pytest.raises(InputError) as e:
        ingest(app, "attendance", bad)
    assert (e.value.line, e.value.column) == (bad_line, "term_start")
    assert str(e.value).count("\n") == 0 and "bad date" in str(e.value)
    assert count_events(app) == before

    first = ingest(app, "attendance", paths["attendance"])
    assert (first["appended"], first["skipped_duplicates"]) == (rows, 0)
    again = ingest(app, "attendance", paths["attendance"])
    assert (again["appended"], again["skipped_duplicates"]) == (0, rows)
    assert count_events(app) == before + rows


def test_peak_memory_of_an_ingest_does_not_grow_with_the_file(
    tmp_path: Path, bench: ModuleType,
) -> None:
    """The same command on a 100,000-row and a 300,000-row census of the same 1,700
    families (three times the terms), first load and reload alike: the larger file's peak
    is within a few megabytes of the smaller's, far below 300 MB."""
    peaks = {}
    for rows in (100_000, 300_000):
        work = tmp_path / str(rows)
        work.mkdir()
        r = bench.measure(work, f"sqlite:///{work / 'ledger.sqlite'}", rows, families=1_700)
        assert "error" not in r, r
        assert (r["first"]["appended"], r["again"]["skipped"]) == (rows, rows)
        peaks[rows] = {run: r[run]["peak_rss_mb"] for run in ("first", "again")}
    for run in ("first", "again"):
        small, large = peaks[100_000][run], peaks[300_000][run]
        assert large < 300, peaks
        assert large - small < 30, peaks  # holding the rows: +500 MB (before streaming)


def test_a_file_changed_between_its_two_readings_or_with_an_endless_line_is_refused(
    new_ledger: Callable[..., LedgerApp], tmp_path: Path, bench: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The census gains a row after ingest has hashed it and before its rows are read: the
    events would carry a hash that is not the file's, so nothing is written. A file whose
    second line never ends is refused at that line, without being held whole."""
    from claimledger.ingest import importer

    app = new_ledger(authority=bench.AUTHORITY)
    paths = bench.write_files(tmp_path, 600)
    ingest(app, "families", paths["families"])
    ingest(app, "members", paths["members"])
    census = paths["attendance"]
    original = census.read_text()
    last_row = original.splitlines()[-1]
    real = importer.scan_file

    def then_appended(*args: object) -> object:
        scan = real(*args)  # type: ignore[arg-type]
        with census.open("a") as f:
            f.write(last_row.replace("census", "census again") + "\n")
        return scan

    monkeypatch.setattr(importer, "scan_file", then_appended)
    before = count_events(app)
    with pytest.raises(InputError, match="changed while it was being ingested"):
        ingest(app, "attendance", census)
    assert count_events(app) == before
    monkeypatch.setattr(importer, "scan_file", real)
    census.write_text(original)
    assert ingest(app, "attendance", census)["appended"] == 600

    endless = tmp_path / "endless.csv"
    endless.write_text(original.splitlines()[0] + "\n" + "x" * (2 << 20))
    with pytest.raises(InputError, match="line longer than") as e:
        ingest(app, "attendance", endless)
    assert e.value.line == 2


def test_the_measured_peak_is_the_commands_own_not_its_parents(
    tmp_path: Path, bench: ModuleType,
) -> None:
    """A test run can hold hundreds of megabytes when it starts the command; a child
    started straight from it would report that peak as its own (``ru_maxrss`` survives an
    exec). Here the parent holds 400 MB and the 20,000-row ingest still measures its own."""
    held = bytearray(400 * 2**20)
    held[::4096] = b"\x01" * len(held[::4096])  # touched: resident
    r = bench.measure(tmp_path, f"sqlite:///{tmp_path / 'ledger.sqlite'}", 20_000,
                      families=200)
    assert r["first"]["appended"] == 20_000
    assert 0 < r["first"]["peak_rss_mb"] < 200 and 0 < r["again"]["peak_rss_mb"] < 200, r
    del held
