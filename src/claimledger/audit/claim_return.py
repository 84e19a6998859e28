"""The claim return (what the authority sends the ministry for a window) and the claims report.

A return has a **summary** (window, authority, families by route, payments by item and in
total, the reversals to repay and the net) and a **schedule** (one row per claim: claim id,
family ref, route, claimed on, payment item and amount, state, internal audit, spot check),
with the reversals to repay listed after it. It is written as XLSX (two sheets: Summary,
Schedule, and Reversals), CSV (the three tables one after another, each under a title row)
or JSON, chosen by the file's extension; the file is written whole or not at all.

*The reversals a return lists* are those recorded after the previous claim run and up to
this one (for a dry run's draft return: up to now), so each reversal is repaid in exactly one
return: the next one after it.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..domain.base import iso_utc
from ..errors import UsageError
from . import claim_run, claims

if TYPE_CHECKING:
    from ..application import LedgerApp

FORMATS = (".xlsx", ".csv", ".json")
SCHEDULE = ("claim_id", "family_ref", "route", "claimed_on", "payment_item", "payment",
            "state", "internal_audit", "spot_check")
REVERSALS = ("claim_id", "family_ref", "route", "claimed_on", "payment", "reason",
             "reversed_on", "reversed_by", "note")


def return_format(path: Path) -> str:
    """The format a return file's name asks for, or a UsageError naming the ones there are."""
    ext = path.suffix.lower()
    if ext not in FORMATS:
        raise UsageError(f"{path}: a claim return is {', '.join(FORMATS)}, not "
                         f"{ext or 'a file without an extension'}")
    return ext


def _money(text: str | None) -> Decimal:
    return Decimal(text) if text else Decimal(0)


def _reversals(rows: list[dict[str, Any]], after: str, upto: str) -> list[dict[str, Any]]:
    out = []
    for c in rows:
        rv = c["reversal"]
        if rv is not None and after < rv["at"] <= upto:
            out.append({"claim_id": c["claim_id"], "family_ref": c["family_ref"],
                        "route": c["route"], "claimed_on": c["claimed_on"],
                        "payment": c["amount"], "reason": rv["reason"],
                        "reversed_on": rv["at"][:10], "reversed_by": rv["by"],
                        "note": rv["note"]})
    return out


def _audit_of(audit: dict[str, Any] | None, cid: str) -> str:
    if audit is None:
        return "none drawn"
    return "sampled" if cid in audit["chosen"] else "not sampled"


def build(app: LedgerApp, run: dict[str, Any] | None, draft: dict[str, Any] | None = None
          ) -> dict[str, Any]:
    """The return of a recorded run, or (``draft``: a dry run's result) of what it would
    claim."""
    every = claims.claim_states(app)
    earlier = [r for r in claim_run.runs(app)
               if run is None or r["position"] < run["position"]]
    after = earlier[-1]["recorded_at"] if earlier else ""
    if run is not None:
        mine = {c["claim_id"]: c for c in claim_run.run_claims(app, run)}
        audit = run["audit"]
        schedule = [{
            "claim_id": cid, "family_ref": c["family_ref"], "route": c["route"],
            "claimed_on": c["claimed_on"], "payment_item": c["item"], "payment": c["amount"],
            "state": c["status"], "internal_audit": _audit_of(audit, cid),
            "spot_check": c["spot_checks"][-1]["result"] if c["spot_checks"] else "",
        } for cid, c in sorted(mine.items())]
        head = {"run_id": run["run_id"], "from": run["from_on"], "to": run["to_on"],
                "as_of": run["as_of"], "submitted_at": run["recorded_at"]}
        upto = run["recorded_at"]
    else:
        assert draft is not None
        audit = draft["audit"]
        schedule = [{
            "claim_id": c["claim_id"], "family_ref": c["family_ref"], "route": c["route"],
            "claimed_on": draft["as_of"], "payment_item": c["item"], "payment": c["amount"],
            "state": "draft (not submitted)", "internal_audit": _audit_of(audit, c["claim_id"]),
            "spot_check": "",
        } for c in draft["claimable"]]
        head = {"run_id": None, "from": draft["from"], "to": draft["to"],
                "as_of": draft["as_of"], "submitted_at": None}
        upto = iso_utc(app.settings.clock())
    reversals = _reversals(every, after, upto)
    by_route = Counter(s["route"] for s in schedule)
    items: dict[str, dict[str, Any]] = {}
    for s in schedule:
        it = items.setdefault(s["payment_item"] or "none", {"claims": 0, "amount": Decimal(0)})
        it["claims"] += 1
        it["amount"] += _money(s["payment"])
    claimed = sum((_money(s["payment"]) for s in schedule), Decimal(0))
    repay = sum((_money(r["payment"]) for r in reversals), Decimal(0))
    summary = {
        **head, "authority": app.ledger().authority, "draft": run is None,
        "families_by_route": dict(sorted(by_route.items())),
        "payments_by_item": {k: {"claims": v["claims"], "amount": str(v["amount"])}
                             for k, v in sorted(items.items())},
        "claims": len(schedule), "total_claimed": str(claimed),
        "reversals": len(reversals), "total_to_repay": str(repay),
        "net": str(claimed - repay),
    }
    return {"summary": summary, "schedule": schedule, "reversals": reversals}


# --- writing the file ---------------------------------------------------------------------
def _summary_rows(s: dict[str, Any]) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("authority", s["authority"]), ("claim run", s["run_id"] or "draft (not submitted)"),
        ("window from", _day(s["from"])), ("window to", _day(s["to"])),
        ("as of", _day(s["as_of"])),
        ("submitted at", _moment(s["submitted_at"]) if s["submitted_at"] else None),
    ]
    rows += [(f"families: {route}", n) for route, n in s["families_by_route"].items()]
    for item, v in s["payments_by_item"].items():
        rows += [(f"claims: {item}", v["claims"]), (f"payments: {item}", Decimal(v["amount"]))]
    rows += [("claims", s["claims"]), ("total claimed", Decimal(s["total_claimed"])),
             ("reversals to repay", s["reversals"]),
             ("total to repay", Decimal(s["total_to_repay"])), ("net", Decimal(s["net"]))]
    return rows


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "")).replace(microsecond=0)


def _typed(row: dict[str, Any], columns: tuple[str, ...]) -> list[Any]:
    """A row with dates as dates and amounts as numbers (for XLSX cells)."""
    out: list[Any] = []
    for col in columns:
        v = row.get(col)
        if col in ("claimed_on", "reversed_on"):
            v = _day(v)
        elif col == "payment":
            v = None if v is None else Decimal(v)
        out.append(v)
    return out


def _xlsx(ret: dict[str, Any]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    bold = Font(bold=True)
    summary = wb.active
    summary.title = "Summary"
    for k, v in _summary_rows(ret["summary"]):
        summary.append([k, v])
    for name, cols, rows in (("Schedule", SCHEDULE, ret["schedule"]),
                             ("Reversals", REVERSALS, ret["reversals"])):
        sheet = wb.create_sheet(name)
        sheet.append(list(cols))
        for cell in sheet[1]:
            cell.font = bold
        for r in rows:
            sheet.append(_typed(r, cols))
    for sheet in wb.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, datetime):
                    cell.number_format = "yyyy-mm-dd hh:mm:ss"
                elif isinstance(cell.value, date):
                    cell.number_format = "yyyy-mm-dd"
                elif isinstance(cell.value, Decimal):
                    cell.number_format = "#,##0.00"
        sheet.column_dimensions["A"].width = 28
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _csv(ret: dict[str, Any]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["summary"])
    w.writerows((k, "" if v is None else v) for k, v in _summary_rows(ret["summary"]))
    for title, cols, rows in (("schedule", SCHEDULE, ret["schedule"]),
                              ("reversals", REVERSALS, ret["reversals"])):
        w.writerow([])
        w.writerow([title])
        w.writerow(cols)
        w.writerows(["" if r.get(c) is None else r[c] for c in cols] for r in rows)
    return buf.getvalue().encode("utf-8")


def write(ret: dict[str, Any], path: Path) -> dict[str, Any]:
    """Write the return to ``path`` in the format its extension names: a temporary file in
    the same folder, renamed over the target once complete (never a half-written return)."""
    ext = return_format(path)
    if ext == ".xlsx":
        data = _xlsx(ret)
    elif ext == ".csv":
        data = _csv(ret)
    else:
        data = orjson.dumps(ret, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {"file": str(path), "bytes": len(data), "claims": ret["summary"]["claims"],
            "total_claimed": ret["summary"]["total_claimed"],
            "total_to_repay": ret["summary"]["total_to_repay"]}


# --- the claims report --------------------------------------------------------------------
def report(app: LedgerApp, from_on: date, to_on: date) -> dict[str, Any]:
    """Claims dated in ``[from_on, to_on]``: by state, by route and their payments; the
    reversals; the spot checks' latest outcome per claim and the failed share."""
    if to_on < from_on:
        raise UsageError(f"--window: {to_on} is before {from_on}")
    lo, hi = from_on.isoformat(), to_on.isoformat()
    rows = [c for c in claims.claim_states(app) if lo <= c["claimed_on"] <= hi]
    by_state: Counter[str] = Counter(c["status"] for c in rows)
    routes: dict[str, dict[str, Any]] = {}
    for c in rows:
        r = routes.setdefault(c["route"], {"claims": 0, "amount": Decimal(0),
                                           "standing_amount": Decimal(0)})
        r["claims"] += 1
        r["amount"] += _money(c["amount"])
        if c["status"] in ("submitted", "validated"):
            r["standing_amount"] += _money(c["amount"])
    checked = {c["claim_id"]: c["spot_checks"][-1]["result"] for c in rows if c["spot_checks"]}
    outcomes = Counter(checked.values())
    reversals = [{"claim_id": c["claim_id"], "route": c["route"], "payment": c["amount"],
                  "reason": c["reversal"]["reason"], "reversed_on": c["reversal"]["at"][:10]}
                 for c in rows if c["reversal"] is not None]
    failed = outcomes.get("failed", 0)
    return {
        "from": lo, "to": hi, "claims": len(rows),
        "by_state": dict(sorted(by_state.items())),
        "by_route": {k: {"claims": v["claims"], "amount": str(v["amount"]),
                         "standing_amount": str(v["standing_amount"])}
                     for k, v in sorted(routes.items())},
        "total_amount": str(sum((_money(c["amount"]) for c in rows), Decimal(0))),
        "reversals": reversals,
        "total_reversed": str(sum((_money(r["payment"]) for r in reversals), Decimal(0))),
        "spot_checks": {"checked": len(checked), "upheld": outcomes.get("upheld", 0),
                        "failed": failed,
                        "failed_share": None if not checked
                        else str((Decimal(failed) / len(checked)).quantize(Decimal("0.0001")))},
    }


def report_csv(r: dict[str, Any]) -> str:
    """``window,group,item,value`` rows, as ``report cohort --csv`` has them."""
    window = f"{r['from']}..{r['to']}"
    rows: list[tuple[str, str, str, Any]] = [(window, "claims", "total", r["claims"])]
    rows += [(window, "state", k, n) for k, n in r["by_state"].items()]
    for route, v in r["by_route"].items():
        rows += [(window, "route", f"{route} claims", v["claims"]),
                 (window, "route", f"{route} amount", v["amount"]),
                 (window, "route", f"{route} standing amount", v["standing_amount"])]
    rows += [(window, "payments", "total", r["total_amount"]),
             (window, "reversals", "claims", len(r["reversals"])),
             (window, "reversals", "amount", r["total_reversed"])]
    rows += [(window, "spot_checks", k, "" if v is None else v)
             for k, v in r["spot_checks"].items()]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("window", "group", "item", "value"))
    w.writerows(rows)
    return buf.getvalue()


def render_report(r: dict[str, Any]) -> str:
    sc = r["spot_checks"]
    lines = [f"claims dated {r['from']}..{r['to']}: {r['claims']}, amount {r['total_amount']}",
             "  by state: " + (", ".join(f"{k} {n}" for k, n in r["by_state"].items())
                               or "none")]
    lines += [f"  {route:<10} {v['claims']:>5} claims  amount {v['amount']}  standing "
              f"{v['standing_amount']}" for route, v in r["by_route"].items()]
    lines.append(f"  reversals: {len(r['reversals'])}, amount {r['total_reversed']}")
    lines += [f"    {x['claim_id']:<32} {x['reason']:<22} {x['payment']} on {x['reversed_on']}"
              for x in r["reversals"]]
    lines.append(f"  spot checks: {sc['checked']} claims checked, {sc['upheld']} upheld, "
                 f"{sc['failed']} failed"
                 + (f" (failed share {sc['failed_share']})" if sc["failed_share"] else ""))
    return "\n".join(lines)
