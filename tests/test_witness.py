"""The witness belongs to the ledger, not to the spelling of its URL, and survives a crash.

Stories: an admin verifies the ledger by its absolute path after someone cut its tail; a
PostgreSQL ledger is reached as 127.0.0.1 and as localhost; the machine dies while `seal`
writes the witness; two seals finish in the opposite order to their commits.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claimledger import witness
from ledger_story import build


def test_a_cut_tail_is_caught_whatever_the_urls_spelling(settings_for, raw, run,
                                                        backend: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    build(settings_for)
    s = settings_for()
    run("--db", s.db, "--key-dir", str(s.key_dir), "seal")
    w = json.loads((s.key_dir / "witness.json").read_text())
    assert set(w) == {"ledger_id", "tree_size", "root"}
    raw.delete_from(w["tree_size"] - 2)  # the tail, with the last checkpoint
    if backend == "sqlite":
        monkeypatch.chdir(tmp_path)
        spellings = [s.db, "sqlite:///ledger.sqlite"]
    else:
        spellings = [s.db, s.db.replace("127.0.0.1", "localhost")]
    for url in spellings:
        code, _, err = run("--db", url, "--key-dir", str(s.key_dir), "verify")
        assert code == 1, (url, err)
        assert f"truncated: the witnessed checkpoint of tree size {w['tree_size']}" in err


def test_an_empty_witness_left_by_a_crash_is_one_clear_line(settings_for, run):
    build(settings_for)
    s = settings_for()
    (s.key_dir / "witness.json").write_bytes(b"")
    code, _, err = run("--db", s.db, "--key-dir", str(s.key_dir), "verify")
    assert code == 2
    assert err.strip().startswith(f"claimledger: {s.key_dir / 'witness.json'}: not a witness")
    assert "\n" not in err.strip() and "Traceback" not in err
    # The next seal replaces it with a good one, written whole.
    code, _, err = run("--db", s.db, "--key-dir", str(s.key_dir), "seal")
    assert code == 0, err
    assert run("--db", s.db, "--key-dir", str(s.key_dir), "verify")[0] == 0


def test_the_witness_never_moves_back(tmp_path: Path):
    keys = tmp_path / "k"
    keys.mkdir()
    assert witness.advance(keys, "L", 20, "b" * 64)
    assert not witness.advance(keys, "L", 10, "a" * 64)  # the slower of two seals
    assert witness.read(keys) == {"ledger_id": "L", "tree_size": 20, "root": "b" * 64}
    assert not list(keys.glob(".witness.json.*.tmp"))
