"""Import checks before it commits: a damaged or doctored export lands nowhere.

Story: a council moves its ledger to a new server with `export` and `import`. On the way the
file is damaged (cut short) or doctored (a payload byte edited, a ciphertext changed, a line
dropped, duplicated or renumbered, half the family keys left out). Each time `import` says
which line or event is wrong, exits non-zero, and leaves the target exactly as it was: no
rows and, on SQLite, no file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from ledger_story import build


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def _edit_clear_payload(lines: list[str]) -> list[str]:
    """The ledger's initialisation names another authority (its payload is in the clear)."""
    d = json.loads(lines[1])
    d["state"] = d["state"].replace("Worcestershire", "Worcestershirf")
    return [lines[0], json.dumps(d) + "\n", *lines[2:]]


def _edit_ciphertext(lines: list[str]) -> list[str]:
    i = next(i for i, line in enumerate(lines) if '\\"sealed\\"' in line)
    d = json.loads(lines[i])
    state = json.loads(d["state"])
    c = state["sealed"]
    state["sealed"] = c[:20] + ("A" if c[20] != "A" else "B") + c[21:]
    d["state"] = json.dumps(state, separators=(",", ":"), sort_keys=True)
    return [*lines[:i], json.dumps(d) + "\n", *lines[i + 1:]]


def _drop_event(lines: list[str]) -> list[str]:
    return [*lines[:5], *lines[6:]]


def _duplicate_event(lines: list[str]) -> list[str]:
    return [*lines[:5], lines[4], *lines[5:]]


def _renumber(lines: list[str]) -> list[str]:
    d = json.loads(lines[3])
    d["position"] = 10_000
    return [*lines[:3], json.dumps(d) + "\n", *lines[4:]]


def _cut(lines: list[str]) -> list[str]:
    return lines[:-4]


def _cut_mid_line(lines: list[str]) -> list[str]:
    return [*lines[:7], lines[7][:40]]


def _half_the_keys(lines: list[str]) -> list[str]:
    keys = [i for i, line in enumerate(lines) if line.startswith('{"family_key"')]
    drop = set(keys[: len(keys) // 2 + 1])
    kept = [line for i, line in enumerate(lines) if i not in drop]
    end = json.loads(kept[-1])
    end["end"]["family_keys"] -= len(drop)  # a careful forger fixes the trailer too
    return [*kept[:-1], json.dumps(end) + "\n"]


DAMAGE: dict[str, tuple[Callable[[list[str]], list[str]], int, str]] = {
    "payload byte edited": (_edit_clear_payload, 1, "event ledger/main#1 at position 1: edited"),
    "ciphertext edited": (_edit_ciphertext, 1, "edited: sealed payload fails authentication"),
    "event line dropped": (_drop_event, 1, "lines were removed or added"),
    "event line duplicated": (_duplicate_event, 1, "lines were duplicated, moved or renumbered"),
    "position renumbered": (_renumber, 1, "lines were duplicated, moved or renumbered"),
    "cut at a line": (_cut, 1, "no trailer: the export was cut short"),
    "cut mid-line": (_cut_mid_line, 2, ":8: not JSON"),
    "half the family keys": (_half_the_keys, 1, "data key is missing but no Family.Erased"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_export_lands_nowhere(damage: str, settings_for, db_url: str, tmp_path: Path,
                                        run, backend: str) -> None:
    source = f"sqlite:///{tmp_path}/source.sqlite"
    build(lambda **kw: settings_for(db=source, **kw))
    keys = str(settings_for().key_dir)
    code, _, err = run("--db", source, "export", "--out", str(tmp_path / "x.jsonl"))
    assert code == 0, err
    change, exit_code, reason = DAMAGE[damage]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(change(_lines(tmp_path / "x.jsonl"))))
    code, out, err = run("--db", db_url, "--key-dir", keys, "import", str(bad))
    assert code == exit_code, (out, err)
    assert reason in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    if backend == "sqlite":
        assert not list(tmp_path.glob("ledger.sqlite*")), "no file created"
    else:
        with psycopg.connect(db_url) as c:
            tables = c.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                               ).fetchone()[0]
        assert tables == 0, "no table created"


def test_an_undamaged_export_still_imports(settings_for, db_url: str, tmp_path: Path, run):
    source = f"sqlite:///{tmp_path}/source.sqlite"
    build(lambda **kw: settings_for(db=source, **kw))
    keys = str(settings_for().key_dir)
    run("--db", source, "export", "--out", str(tmp_path / "x.jsonl"))
    code, out, err = run("--db", db_url, "--key-dir", keys, "import", str(tmp_path / "x.jsonl"))
    assert code == 0, err
    assert "checked before loading: 16 events, 2 checkpoints, intact" in out
    assert run("--db", db_url, "--key-dir", keys, "verify")[0] == 0
