"""The package installs whole: every package under src/ is in pyproject's list, and the
policies it ships are the repository's (scripts/wheel-check builds and runs the wheel)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_under_src_is_installed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(ROOT / "src").parts)
             for p in (ROOT / "src").rglob("__init__.py")}
    assert found | {"claimledger.policies"} == listed
    assert config["package-dir"]["claimledger.policies"] == "policies"
    assert config["package-data"]["claimledger.policies"] == ["*/*.toml"]
    assert sorted((ROOT / "policies").glob("*/*.toml")), "no policies to ship"
