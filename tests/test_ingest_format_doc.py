"""docs/ingest-format.md is the contract a data team writes to: it must say exactly what the
code enforces (every kind, its header in order, and every value an enumerated column takes)."""

from __future__ import annotations

import re
from pathlib import Path

from claimledger.ingest.schemas import JUDGEMENT_PROBLEMS, SCHEMAS
from claimledger.policy.evidence import (
    CARE_STATUSES,
    EMPLOYMENT_KINDS,
    INCIDENT_KINDS,
    PROBLEMS,
    ROLES,
    SETTINGS,
    STAGES,
)

DOC = (Path(__file__).resolve().parents[1] / "docs" / "ingest-format.md").read_text()
VALUES = {"members": ROLES, "indicators": (*PROBLEMS, *STAGES), "attendance": SETTINGS,
          "incidents": INCIDENT_KINDS, "employment": EMPLOYMENT_KINDS,
          "care_status": CARE_STATUSES, "judgements": JUDGEMENT_PROBLEMS}


def _section(kind: str) -> str:
    m = re.search(rf"^### `{kind}`\n(.*?)(?=^### |\Z)", DOC, re.S | re.M)
    assert m, f"docs/ingest-format.md has no section for {kind}"
    return m.group(1)


def test_every_kind_its_exact_header_and_its_values() -> None:
    assert [m for m in re.findall(r"^### `(\w+)`", DOC, re.M)] == list(SCHEMAS)
    for kind, schema in SCHEMAS.items():
        section = _section(kind)
        assert f"```\n{','.join(schema.header)}\n```" in section, kind
        for value in VALUES.get(kind, ()):
            if value != "all":
                assert f"`{value}`" in section or f"`{value}`" in _section("indicators"), \
                    (kind, value)
        for column in schema.header:
            if column not in ("family_ref", "member_ref", "source"):
                assert f"`{column}`" in section or column in section, (kind, column)


def test_ingest_help_lists_every_kind(run) -> None:
    code, out, _ = run("ingest", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert ("KIND is one of: " + ", ".join(SCHEMAS) + ".") in text
    assert "docs/ingest-format.md" in text
