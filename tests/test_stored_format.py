"""The stored format stays readable: a ledger written by an earlier claimledger still imports,
verifies and explains after every change.

The fixture ``tests/fixtures/legacy/`` is a 12-family demo county's ledger (seven validated
claims, a spot check, one family erased, eight checkpoints) exported by claimledger 0.1.0
before the serialised append, with its master key and public signing key.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from claimledger.application import Settings, open_app

LEGACY = Path(__file__).parent / "fixtures" / "legacy"


def _keys(tmp_path: Path) -> Path:
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    for name in ("master.key", "signing.pub"):
        shutil.copy(LEGACY / name, keys / name)
    (keys / "master.key").chmod(0o600)
    return keys


def test_a_ledger_exported_before_the_change_imports_and_verifies(db_url: str, tmp_path: Path,
                                                                 run) -> None:
    keys = _keys(tmp_path)
    code, out, err = run("--db", db_url, "--key-dir", str(keys), "--actor", "admin",
                         "import", str(LEGACY / "ledger-export.jsonl"))
    assert code == 0, err
    code, out, err = run("--db", db_url, "--key-dir", str(keys), "verify")
    assert code == 0, err
    assert "intact" in out
    assert "erased: family/F00001" in out
    app = open_app(Settings(db=db_url, key_dir=keys, actor="admin"))
    assert app.verify().events == 631
    code, out, err = run("--db", db_url, "--key-dir", str(keys), "--actor", "admin",
                         "claim", "explain", "F00004/progress")
    assert code == 0, err
    assert "replay matches the recorded decision" in out
    assert "claimable: yes" in out
