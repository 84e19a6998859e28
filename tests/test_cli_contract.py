"""The command-line contract: --json documents, exit codes, and errors that say where.

Exit 0 success, 1 a negative finding, 2 bad usage or input (nothing written).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from county import County

BROKEN = Path(__file__).parent / "broken_policies"


def test_policy_list_and_show_print_json(run):
    code, out, _ = run("policy", "list", "--json")
    assert code == 0
    ids = [p["id"] for p in json.loads(out)["policies"]]
    assert "worcestershire/stronger-families-2015-16" in ids and len(ids) == 6
    code, out, _ = run("policy", "show", "southwark/outcomes-plan-2018-2020", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["source"]["document"] == "001_770dccea92cdc47e.txt"
    assert all(o["section"] for o in shown["outcomes"])


def test_policy_check_passes_on_the_shipped_policies(run):
    code, out, _ = run("policy", "check", "--json")
    assert code == 0 and json.loads(out)["ok"]


@pytest.mark.parametrize("name", sorted(p.name for p in (BROKEN / "single").glob("*.toml")))
def test_a_broken_policy_fails_check_with_file_key_and_reason(run, name):
    src = BROKEN / "single" / name
    header = dict(line[2:].split(": ", 1) for line in src.read_text().splitlines()
                  if line.startswith("# expect-"))
    code, out, err = run("policy", "check", str(src), "--json")
    assert code == 2
    errors = json.loads(out)["errors"]
    assert any(e["file"] == str(src) and e["key"] == header.get("expect-key", e["key"])
               and header["expect-reason"] in e["reason"] for e in errors), errors
    assert f"claimledger: {src}" in err


def test_ingest_of_a_bad_file_names_file_line_column_and_writes_nothing(tmp_path, run):
    c = County(tmp_path, run)
    c.init("Worcestershire")
    families = c.write("families", [
        {"family_ref": "W-1", "authority": "Worcestershire",
         "policy_id": "worcestershire/stronger-families-2015-16", "identified_on": "2015-05-01"},
        {"family_ref": "W-2", "authority": "Worcestershire",
         "policy_id": "worcestershire/stronger-families-2015-16", "identified_on": "2015-13-01"},
    ])
    before = (tmp_path / "ledger.sqlite").read_bytes()
    code, _, err = c.cli("ingest", "families", str(families), ok=False)
    assert code == 2
    assert f"{families}:3 column identified_on" in err
    assert (tmp_path / "ledger.sqlite").read_bytes() == before


def test_commands_on_a_missing_ledger_exit_2(tmp_path, run):
    code, _, err = run("--db", f"sqlite:///{tmp_path}/none.sqlite", "verify")
    assert code == 2 and "run `claimledger init` first" in err
    assert not (tmp_path / "none.sqlite").exists()


def test_evaluate_of_an_unknown_family_and_bad_date_exit_2(tmp_path, run):
    c = County(tmp_path, run)
    c.init("Worcestershire")
    code, _, err = c.cli("evaluate", "NOPE", "--as-of", "2016-01-01", ok=False)
    assert code == 2 and "no family 'NOPE'" in err
    code, _, err = c.cli("evaluate", "NOPE", "--as-of", "2016-31-01", ok=False)
    assert code == 2 and "not an ISO date" in err
