"""Write data-match CSV files (the DESIGN's ingest contract) and load them through the CLI."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

HEADERS = {
    "families": "family_ref,authority,policy_id,identified_on",
    "members": "family_ref,member_ref,role,birth_date",
    "indicators": "family_ref,member_ref,problem,indicator,observed_on,stage,source",
    "attachments": "family_ref,attached_on,lead_professional,assessment_on,plan_on",
    "attendance": "member_ref,term_start,term_end,sessions_possible,sessions_absent,"
                  "unauthorised_absent,fixed_term_exclusions,permanent_exclusion,setting,source",
    "incidents": "member_ref,occurred_on,kind,serious,source",
    "employment": "member_ref,kind,benefit,start_on,end_on,hours_per_week,source",
    "care_status": "member_ref,status,start_on,end_on,source",
    "scores": "member_ref,instrument,assessed_on,score,assessor",
    "judgements": "family_ref,judged_on,practitioner,problem,progress,sustained,"
                  "intensity_reduced,note",
    "attestations": "family_ref,member_ref,outcome,attested_on,practitioner,evidence",
}
ORDER = list(HEADERS)


class County:
    """A ledger in a temporary directory, driven through the command line."""

    def __init__(self, tmp: Path, run: Callable[..., tuple[int, str, str]], db: str | None = None):
        self.tmp = tmp
        self.run_cli = run
        self.db = db or f"sqlite:///{tmp}/ledger.sqlite"
        self.keys = tmp / "keys"
        self.n = 0

    def cli(self, *args: str, now: str = "2016-06-01T00:00:00Z", actor: str = "auditor1",
            ok: bool = True) -> tuple[int, Any, str]:
        code, out, err = self.run_cli("--db", self.db, "--key-dir", str(self.keys), "--now", now,
                                      "--actor", actor, *args)
        if ok:
            assert code == 0, f"{args}: exit {code}: {err}"
        data: Any = out
        if "--json" in args and out.strip():
            data = json.loads(out)
        return code, data, err

    def init(self, authority: str, now: str = "2015-01-01T00:00:00Z") -> None:
        self.cli("init", "--authority", authority, now=now, actor="admin1")

    def write(self, kind: str, rows: list[dict[str, Any]]) -> Path:
        self.n += 1
        path = self.tmp / f"{self.n:03d}-{kind}.csv"
        cols = HEADERS[kind].split(",")
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for r in rows:
                unknown = set(r) - set(cols)
                assert not unknown, f"{kind}: unknown columns {unknown}"
                w.writerow(["" if r.get(c) is None else str(r.get(c)) for c in cols])
        return path

    def ingest(self, data: dict[str, list[dict[str, Any]]], now: str) -> None:
        for kind in ORDER:
            if data.get(kind):
                self.cli("ingest", kind, str(self.write(kind, data[kind])), "--json", now=now,
                         actor="data1")

    def evaluate(self, family: str, as_of: str, known_at: str | None = None,
                 now: str = "2016-06-01T00:00:00Z") -> dict[str, Any]:
        args = ["evaluate", family, "--as-of", as_of, "--json"]
        if known_at:
            args += ["--known-at", known_at]
        return self.cli(*args, now=now)[1]


def terms(member: str, absent_pct: int, years: tuple[int, ...] = (2015,), *,
          possible: int = 100, fixed: int = 0, setting: str = "school") -> list[dict[str, Any]]:
    """Three school terms a year from the given autumn(s), with the given absence."""
    out = []
    for y in years:
        for start, end in ((f"{y}-09-01", f"{y}-12-18"), (f"{y + 1}-01-04", f"{y + 1}-03-24"),
                           (f"{y + 1}-04-11", f"{y + 1}-07-20")):
            out.append({"member_ref": member, "term_start": start, "term_end": end,
                        "sessions_possible": possible,
                        "sessions_absent": possible * absent_pct // 100,
                        "unauthorised_absent": 0, "fixed_term_exclusions": fixed,
                        "permanent_exclusion": "no", "setting": setting, "source": "census"})
    return out
