"""``claimledger doctor``: what an admin checks after set-up and before each claim window.

Each check is a small function returning ``(ok, detail)``; the report lists every one, and
the command exits 1 naming each problem (0 when all pass). Nothing is written. The checks:
where the ledger is (password hidden), its id and authority; on PostgreSQL the append-only
trigger, the erasure function and the application role's rights; the key files and their
modes; that the master key is the ledger's and the signing key its active key; the witness;
the last checkpoint and how many events follow it; the policies found.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from . import witness
from .crypto import load_master_key, master_key_id, master_key_path
from .errors import ClaimLedgerError
from .ledger import signing
from .store.hardening import hardening_in_place

Check = tuple[bool, str]


def _mode(path: Path, private: bool) -> Check:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return False, f"{path}: missing"
    if private and mode & (stat.S_IRWXG | stat.S_IRWXO):
        return False, f"{path}: mode {mode & 0o777:o}, expected 600 (readable by others)"
    return True, f"{path}: present, mode {mode & 0o777:o}"


def _append_only(app: Any) -> Check:
    rec = app.recorder
    found = hardening_in_place(rec.datastore, rec.events_table_name)
    triggers, erase_fn, grants = found.triggers, found.erase_function, found.grants
    missing = {"claimledger_append_only", "claimledger_no_truncate"} - triggers
    if missing:
        return False, f"append-only trigger(s) missing: {', '.join(sorted(missing))}"
    if not erase_fn:
        return False, "claimledger_erase_key() missing: keys can be deleted without erasure"
    roles = sorted(g for g, p in grants.items() if p == {"SELECT", "INSERT"})
    return True, ("triggers refuse UPDATE, DELETE and TRUNCATE; erasure through "
                  "claimledger_erase_key()" + (f"; application role(s) {', '.join(roles)} "
                                               "may only SELECT and INSERT" if roles else ""))


def _master(app: Any) -> Check:
    path = master_key_path(app.settings.key_directory)
    if not path.exists():
        return False, f"{path}: missing (sealed payloads cannot be opened or written here)"
    try:
        key = load_master_key(path)
    except ClaimLedgerError as e:
        return False, str(e)
    if master_key_id(key) != app.master_key_id():
        return False, (f"{path}: not this ledger's master key (id {master_key_id(key)[:16]}…, "
                       f"the ledger's is {app.master_key_id()[:16]}…)")
    return True, f"{path}: the ledger's master key"


def _signing(app: Any, led: Any) -> Check:
    path = app.settings.key_directory / signing.PRIVATE_NAME
    try:
        private = signing.load_private(path)
    except ClaimLedgerError as e:
        return False, str(e)
    kid = signing.key_id(signing.public_raw(private))
    if kid != led.active_key_id:
        return False, (f"{path}: key {kid[:16]}… is not the ledger's active signing key "
                       f"{led.active_key_id[:16]}…")
    pub = app.settings.key_directory / signing.PUBLIC_NAME
    try:
        published = signing.load_public_hex(pub.read_text(), str(pub))
    except (OSError, ClaimLedgerError):
        return False, f"{pub}: missing or unreadable (auditors verify with it)"
    if published != signing.public_raw(private):
        return False, f"{pub}: does not match {path}"
    return True, f"{path}: the ledger's active key {kid[:16]}…"


def _witness(app: Any, checkpoints: list[dict[str, Any]]) -> Check:
    try:
        seen = witness.for_ledger(app.settings.key_directory, app.ledger_id(), app.location.url)
    except ClaimLedgerError as e:
        return False, str(e)
    if seen is None:
        return False, (f"{witness.path_in(app.settings.key_directory)}: no witness of this ledger "
                       "(run `claimledger seal`)")
    size = seen["tree_size"]
    match = next((c for c in checkpoints if c["tree_size"] == size), None)
    if match is None or match["root"] != seen["root"]:
        return False, (f"the witnessed checkpoint of {size} events (root {seen['root'][:16]}…) "
                       "is not in the ledger: run `claimledger verify`")
    return True, f"witnesses the checkpoint of {size} events"


def _checkpoint(app: Any, checkpoints: list[dict[str, Any]], events: int) -> Check:
    if not checkpoints:
        return False, f"no checkpoint yet; {events} events unsealed (run `claimledger seal`)"
    last = checkpoints[-1]
    unsealed = events - last["tree_size"] - 1  # the checkpoint's own event follows its tree
    detail = (f"last checkpoint covers {last['tree_size']} events, signed "
              f"{last['signed_at'][:19]}; {max(unsealed, 0)} events after it")
    return unsealed <= 0, detail + ("" if unsealed <= 0 else " (run `claimledger seal`)")


def _policies() -> tuple[Check, list[dict[str, str]]]:
    from .evaluate.service import current_policies, policies_root

    try:
        found = current_policies()
    except ClaimLedgerError as e:
        return (False, str(e)), []
    rows = [{"id": p.id, "sha256": p.sha256} for p in sorted(found, key=lambda p: p.id)]
    return (True, f"{len(rows)} found under {policies_root()}"), rows


def doctor(settings: Any) -> dict[str, Any]:
    """Every check, as plain data: ``ok`` is True when none found a problem."""
    from .application import open_app
    from .audit.checkpoints import list_checkpoints

    checks: list[dict[str, Any]] = []

    def add(name: str, result: Check) -> bool:
        checks.append({"check": name, "ok": result[0], "detail": result[1]})
        return result[0]

    report: dict[str, Any] = {"checks": checks}
    try:
        app = open_app(settings)
        led = app.ledger()
    except ClaimLedgerError as e:
        add("ledger", (False, str(e)))
        report.update(ok=False, problems=[c["detail"] for c in checks if not c["ok"]])
        return report
    loc = app.location
    report.update(backend=loc.backend, db=loc.shown, ledger_id=led.ledger_id,
                  authority=led.authority)
    add("ledger", (True, f"{loc.backend} at {loc.shown}: ledger {led.ledger_id} of "
                         f"{led.authority or '(no authority named)'}"))
    if loc.backend == "postgres":
        add("append-only", _append_only(app))
    keys = settings.key_directory
    add("signing key file", _mode(keys / signing.PRIVATE_NAME, private=True))
    add("master key file", _mode(master_key_path(keys), private=True))
    add("master key", _master(app))
    add("signing key", _signing(app, led))
    cps = list_checkpoints(app)["checkpoints"]
    add("witness", _witness(app, cps))
    events = sum(1 for _ in app.scan())
    add("checkpoint", _checkpoint(app, cps, events))
    policy_check, policies = _policies()
    add("policies", policy_check)
    report["policies"] = policies
    report["events"] = events
    report["ok"] = all(c["ok"] for c in checks)
    report["problems"] = [f"{c['check']}: {c['detail']}" for c in checks if not c["ok"]]
    return report


def render(report: dict[str, Any]) -> str:
    lines = [f"{'ok ' if c['ok'] else 'BAD'} {c['check']:<17} {c['detail']}"
             for c in report["checks"]]
    lines += [f"    policy {p['id']}  sha256 {p['sha256'][:16]}…"
              for p in report.get("policies", [])]
    lines.append("healthy" if report["ok"] else
                 f"{len(report['problems'])} problem(s): fix each line marked BAD")
    return "\n".join(lines)

