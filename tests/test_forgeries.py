"""Forgeries of what lies outside the hashes: each is caught, and no reader acts on it.

Stories: someone with write access to the database re-types a family's rows (the stored
``topic`` column is not hashed; the envelope's type is), or deletes a family's wrapped data
key so that its data looks erased without any erasure on record. ``verify`` names the event
and exits 1; ``evaluate`` refuses to answer rather than answering from the forged column.
"""

from __future__ import annotations

import pytest

from claimledger.ledger.canonical import loads
from ledger_story import build


def _position(raw, stream: str, type_: str) -> int:
    for pos, _, _, _, state in raw.rows():
        env = loads(state)["envelope"]
        if env["stream"] == stream and env["type"] == type_:
            return pos
    raise AssertionError(f"no {type_} in {stream}")


def _cli(run, settings_for, *args: str):
    s = settings_for()
    return run("--db", s.db, "--key-dir", str(s.key_dir), "--actor", "admin1", *args)


@pytest.mark.parametrize(("row", "retyped", "version"), [
    ("Family.IndicatorRecorded", "Family.Erased", 4),  # read as erased, were it trusted
    ("Family.IncidentRecorded", "Family.AttendanceRecorded", 5),  # incidents read as terms
])
def test_a_retyped_row_is_caught_and_never_read_as_its_new_type(
        row: str, retyped: str, version: int, raw, settings_for, run) -> None:
    build(settings_for)
    at = _position(raw, "family/F-1", row)
    topic = f"claimledger.domain.family:{retyped}"
    raw.execute(f"UPDATE {raw.table} SET topic = ? WHERE {raw.pos} = ?", (topic, at))
    code, _, err = _cli(run, settings_for, "verify")
    assert code == 1
    assert (f"event family/F-1#{version} at position {at}: edited: row's topic {topic!r} is "
            f"not the type its hashed envelope names ({row!r})") in err
    code, out, err = _cli(run, settings_for, "evaluate", "F-1", "--as-of", "2016-03-31")
    assert code == 1 and "erased" not in out
    assert f"stored topic {topic!r} is not the type its hashed envelope names" in err


def test_a_key_deleted_without_an_erasure_is_a_finding_naming_the_family(raw, settings_for,
                                                                         run):
    build(settings_for)
    keys = "claimledger_family_keys"
    raw.execute(f"DELETE FROM {keys} WHERE stream = ?", ("family/F-2",))
    code, _, err = _cli(run, settings_for, "verify")
    assert code == 1
    assert ("deleted: family/F-2's data key is missing but no Family.Erased event records "
            "its erasure") in err
    code, out, err = _cli(run, settings_for, "evaluate", "F-2", "--as-of", "2016-03-31")
    assert code == 1 and "erased" not in out
    assert "family/F-2#1: the family's data key is missing but no Family.Erased event" in err


def test_an_erasure_on_record_still_verifies(settings_for, run):
    build(settings_for)
    code, _, err = _cli(run, settings_for, "erase", "F-2", "--reason", "retention ended")
    assert code == 0, err
    code, out, err = _cli(run, settings_for, "verify")
    assert code == 0, err
    assert "erased: family/F-2" in out
