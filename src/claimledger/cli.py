"""The command line: parse, call one application method, render text or ``--json``.

Library errors map to exit codes in exactly one place, :func:`main`: 0 success, 1 a negative
finding (tampering, invalid bundle, erased data), 2 bad usage or input. With ``--json`` a
command prints one JSON document on stdout; errors always go to stderr.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from .application import Settings, open_app
from .cli_common import (
    EXIT_FINDING,
    EXIT_INTERNAL,
    EXIT_USAGE,
    OutputFile,
    claim,
    cli,
    emit,
    json_option,
    pass_settings,
)
from .errors import ClaimLedgerError, UsageError


@cli.command()
@click.option("--authority", default="", help="The authority this ledger belongs to.")
@click.option("--app-role", default=None, metavar="ROLE",
              help="PostgreSQL: the application's database role, granted only SELECT, INSERT.")
@json_option
@pass_settings
def init(settings: Settings, authority: str, app_role: str | None, as_json: bool) -> None:
    """Create the ledger and the authority's Ed25519 key pair."""
    app = open_app(settings, must_exist=False, app_role=app_role)
    emit(app.init(authority, app_role), as_json)


@cli.command()
@json_option
@pass_settings
def seal(settings: Settings, as_json: bool) -> None:
    """Sign a checkpoint over every event so far."""
    result = open_app(settings).seal()
    emit(result, as_json, lambda r: (
        f"checkpoint: {r['tree_size']} events, root {r['root']}" if r["sealed"]
        else f"not sealed: {r['reason']} ({r['tree_size']} events)"))


@cli.command()
@click.option("--jobs", type=click.IntRange(min=1), default=None, metavar="N",
              help="Processes checking ranges of the ledger at once (default: one per CPU "
                   "for a large ledger, else 1).")
@json_option
@pass_settings
def verify(settings: Settings, jobs: int | None, as_json: bool) -> None:
    """Recompute every hash, link, Merkle root and signature; exit 1 naming the first failure."""
    result = open_app(settings).verify(jobs=jobs)
    data = result.to_dict()

    def text(d: dict[str, Any]) -> str:
        lines = [f"{d['events']} events in {d['streams']} streams, {d['checkpoints']} checkpoints"]
        if d["unsealed_events"]:
            lines.append(f"{d['unsealed_events']} events after the last checkpoint (not yet "
                         "signed: run `claimledger seal`)")
        if d["unchecked_payloads"]:
            lines.append(f"{d['unchecked_payloads']} sealed payloads not opened (no master key "
                         "here): their envelopes, hashes and proofs were checked")
        if d["erased"]:
            lines.append(f"erased: {', '.join(d['erased'])}")
        lines.append("intact" if d["ok"] else "FAILED: " + result.reasons[0])
        return "\n".join(lines)

    emit(data, as_json, text)
    if not result.ok:
        if not as_json:
            click.echo(result.reasons[0], err=True)
        sys.exit(EXIT_FINDING)


@cli.command("export")
@click.option("--out", required=True, type=OutputFile())
@json_option
@pass_settings
def export_cmd(settings: Settings, out: Path, as_json: bool) -> None:
    """Write every event, byte for byte, as JSON lines."""
    from .transfer import export_ledger

    emit(export_ledger(open_app(settings), out), as_json)


@cli.command("import")
@click.argument("src", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@json_option
@pass_settings
def import_cmd(settings: Settings, src: Path, as_json: bool) -> None:
    """Load an export into an empty ledger, keeping positions and hashes."""
    from .transfer import import_ledger

    emit(import_ledger(settings, src), as_json, lambda r: (
        f"imported: {r['imported']}\nfamily_keys: {r['family_keys']}\nfile: {r['file']}\n"
        f"db: {r['db']}\nchecked before loading: {r['checked']['events']} events, "
        f"{r['checked']['checkpoints']} checkpoints, intact"))


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map every error to one line on stderr and an exit code:
    1 a negative finding, 2 bad usage or input, 70 a defect (the traceback only with
    ``--debug`` or ``CLAIMLEDGER_DEBUG=1``)."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args or os.environ.get("CLAIMLEDGER_DEBUG", "") not in ("", "0")
    try:
        cli.main(args=args, prog_name="claimledger", standalone_mode=False)
    except ClaimLedgerError as e:
        click.echo(f"claimledger: {_one_line(str(e))}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("claimledger: aborted", err=True)
        sys.exit(EXIT_USAGE)
    except click.UsageError as e:
        hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
        click.echo(f"claimledger: {_one_line(e.format_message())}{hint}", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as e:
        click.echo(f"claimledger: {_one_line(e.format_message())}", err=True)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)
    except OSError as e:  # a file or folder the user named: unreadable, unwritable, full disk
        if debug:
            raise
        where = f"{e.filename}: " if e.filename else ""
        click.echo(f"claimledger: {where}{e.strerror or type(e).__name__}", err=True)
        sys.exit(EXIT_USAGE)
    except Exception as e:
        if debug:
            raise
        click.echo(f"claimledger: unexpected {type(e).__name__}: {_one_line(str(e))[:300]} "
                   "(a defect; run again with --debug or CLAIMLEDGER_DEBUG=1 for the "
                   "traceback)", err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(0)


# --- evaluation and claims -------------------------------------------------------------------
def _render_decision(d: dict[str, Any]) -> str:
    lines = [
        f"family {d['family_ref']} under {d['policy_id']}",
        f"as of {d['as_of']}, as known at {d['known_at']}",
        f"eligible: {'yes' if d['eligible'] else 'no'}",
    ]
    for p in d.get("problems", []):
        lines.append(f"  {p['problem']} ({p['stage']}): {'met' if p['met'] else 'NOT met'}")
        for o in p.get("outcomes", []):
            mark = "+" if o["met"] else "-"
            lines.append(f"    {mark} {o['id']}: {o['reason']}")
    lines.append(f"route: {d.get('route') or 'none'}")
    lines.append(f"claimable: {'yes' if d['claimable'] else 'no'}")
    pay = d.get("payment")
    if pay:
        basis = {"attachment_date": "rate by the attachment date"}.get(pay.get("basis", ""),
                                                                        "rate by the claim date")
        lines.append(f"amount: £{pay['amount']} ({pay['item']}, {basis}; {pay['section']})")
        if pay.get("note"):
            lines.append(f"  {pay['note']}")
    elif d.get("claimable"):
        lines.append("amount: n/a (the policy states no payment for this route)")
    for r in d.get("reasons", []):
        lines.append(f"  - {r}")
    for n in d.get("selection_notes", []):
        lines.append(f"  note: {n}")
    return "\n".join(lines)


@cli.command("evaluate")
@click.argument("family")
@click.option("--as-of", "as_of", required=True, metavar="DATE", help="Valid date (ISO).")
@click.option("--known-at", "known_at", metavar="TIME",
              help="Transaction time: only events recorded by then count (default now).")
@click.option("--policy", "policy_id", metavar="ID", help="Evaluate under this policy instead.")
@json_option
@pass_settings
def evaluate_cmd(settings: Settings, family: str, as_of: str, known_at: str | None,
                 policy_id: str | None, as_json: bool) -> None:
    """Eligibility, each problem's outcomes, route, claimable, reasons and evidence."""
    from .evaluate.service import evaluate, parse_day

    app = open_app(settings)
    emit(evaluate(app, family, parse_day(as_of, "--as-of"), known_at, policy_id), as_json,
         _render_decision)


@claim.command("submit")
@click.argument("family")
@click.option("--on", "on", required=True, metavar="DATE", help="The claim's date (ISO).")
@json_option
@pass_settings
def claim_submit(settings: Settings, family: str, on: str, as_json: bool) -> None:
    """Decide, record the claim with its policy version, and seal a checkpoint."""
    from .audit import claims
    from .evaluate.service import parse_day

    r = claims.submit(open_app(settings), family, parse_day(on, "--on"))
    emit(r, as_json, lambda r: (
        f"claim {r['claim_id']} submitted ({r['route']}, {r['claimed_on']}, "
        f"amount {r['amount'] or 'n/a'}) under {r['policy_id']}; checkpoint of "
        f"{r['checkpoint']['tree_size']} events signed"))


def _claim_move(action: str, settings: Settings, claim_id: str, text: str | None,
                as_json: bool) -> None:
    from .audit import claims

    fn = {"validate": claims.validate, "reject": claims.reject,
          "withdraw": claims.withdraw}[action]
    r = fn(open_app(settings), claim_id, text)
    emit(r, as_json, lambda r: f"claim {r['claim_id']} is now {r['status']} (by {r['by']})")


@claim.command("validate")
@click.argument("claim_id")
@click.option("--note", help="The auditor's note.")
@json_option
@pass_settings
def claim_validate(settings: Settings, claim_id: str, note: str | None, as_json: bool) -> None:
    """An auditor validates a submitted claim."""
    _claim_move("validate", settings, claim_id, note, as_json)


@claim.command("reject")
@click.argument("claim_id")
@click.option("--reason", required=True, help="Why the claim is rejected.")
@json_option
@pass_settings
def claim_reject(settings: Settings, claim_id: str, reason: str, as_json: bool) -> None:
    """An auditor rejects a claim."""
    _claim_move("reject", settings, claim_id, reason, as_json)


@claim.command("withdraw")
@click.argument("claim_id")
@click.option("--reason", required=True, help="Why the claim is withdrawn.")
@json_option
@pass_settings
def claim_withdraw(settings: Settings, claim_id: str, reason: str, as_json: bool) -> None:
    """Withdraw a claim."""
    _claim_move("withdraw", settings, claim_id, reason, as_json)


@claim.command("list")
@json_option
@pass_settings
def claim_list(settings: Settings, as_json: bool) -> None:
    """Every claim with its status."""
    from .audit import claims

    rows = claims.list_claims(open_app(settings))
    emit({"claims": rows}, as_json, lambda d: "\n".join(
        f"{c['claim_id']:<32} {c['route']:<10} {c['claimed_on']} {c['status']}"
        for c in d["claims"]) or "no claims")


@claim.command("explain")
@click.argument("claim_id")
@click.option("--html", "html_out", type=OutputFile(),
              help="Also write a self-contained HTML page for an auditor (prints on A4).")
@json_option
@pass_settings
def claim_explain(settings: Settings, claim_id: str, html_out: Path | None,
                  as_json: bool) -> None:
    """Replay the claim as known at submission, with the policy bytes it names."""
    from .audit import claims

    app = open_app(settings)
    r = claims.explain(app, claim_id)
    if html_out is not None:
        from .audit.report_html import write_report

        r["html"] = write_report(app, claim_id, html_out)["file"]

    def text(r: dict[str, Any]) -> str:
        lines = [f"claim {r['claim_id']} ({r['status']}), {r['route']} route, "
                 f"claimed on {r['claimed_on']}, amount {r['amount'] or 'n/a'}",
                 f"policy {r['policy_id']} sha256 {r['policy_sha256']}",
                 _render_decision(r["decision"]),
                 "replay matches the recorded decision" if r["replay_matches_recorded"]
                 else "REPLAY DIFFERS from the recorded decision"]
        if r["changed_since"]:
            lines.append("changed since submission:")
            lines.extend(f"  - {c}" for c in r["changed_since"])
        lines.append("history:")
        lines.extend(f"  {h['recorded_at']} {h['type']} by {h['actor']}" for h in r["history"])
        return "\n".join(lines)

    emit(r, as_json, text)


# --- ingest ------------------------------------------------------------------------------------
INGEST_KINDS = ("families", "members", "indicators", "attachments", "attendance", "incidents",
                "employment", "care_status", "scores", "judgements", "attestations")


@cli.command("ingest")
@click.argument("pairs", nargs=-1, required=True, metavar="KIND FILE [KIND FILE]...")
@json_option
@pass_settings
def ingest_cmd(settings: Settings, pairs: tuple[str, ...], as_json: bool) -> None:
    """Append data-match files, each atomically (a bad row rejects its whole file).

    KIND is one of: families, members, indicators, attachments, attendance, incidents,
    employment, care_status, scores, judgements, attestations. Each FILE is CSV in UTF-8
    whose first line is the kind's exact header (docs/ingest-format.md lists every column
    and value).

    Several files (a month's data matches: families, members, then the rest) load in the
    order given, one after another, in one process that reads the ledger's member index
    once; a bad file stops the command, the files before it stay loaded."""
    from .ingest.importer import count_rows, finish, ingest, prepare

    if len(pairs) % 2:
        raise click.UsageError("expected KIND FILE pairs, e.g. ingest families f.csv members m.csv")
    files = [(kind, Path(name)) for kind, name in zip(pairs[::2], pairs[1::2], strict=True)]
    for kind, _ in files:
        if kind not in INGEST_KINDS:
            raise click.BadParameter(f"{kind!r} is not one of {', '.join(INGEST_KINDS)}",
                                     param_hint="KIND")
    app = open_app(settings)
    prepare(app, [file for _, file in files])
    results = []
    for kind, file in files:
        if sys.stderr.isatty() and file.exists():
            with click.progressbar(length=count_rows(file), label=f"ingest {kind}",
                                   file=sys.stderr) as bar:
                result = ingest(app, kind, file, progress=bar.update)
        else:
            result = ingest(app, kind, file)
        results.append(result)
        if not as_json:
            emit(result, False, lambda r: (
                f"{r['file']}: {r['rows']} rows, {r['appended']} events appended "
                f"({r['corrected']} corrections), {r['skipped_duplicates']} already in the "
                "ledger"))
    finish(app)
    if as_json:  # one shape for one file or several: each file, and the totals
        emit({"files": results,
              **{k: sum(r[k] for r in results)
                 for k in ("rows", "appended", "skipped_duplicates", "corrected")}}, True, str)


# --- policies ----------------------------------------------------------------------------------
@cli.group()
def policy() -> None:
    """The Outcomes Plans encoded in policies/ and their validation."""


def _policies_dir(root: Path | None) -> Path:
    from .evaluate.service import policies_root

    folder = root or policies_root()
    if folder.is_file():  # `policy check FILE`
        return folder
    if not any(folder.glob("*/*.toml")):
        raise UsageError(f"no policies found under {folder} (expected <authority>/<plan>.toml "
                         "files; set CLAIMLEDGER_POLICIES or --root to the folder that holds "
                         "them)")
    return folder


@policy.command("list")
@click.option("--root", type=click.Path(path_type=Path, file_okay=False), help="policies dir")
@json_option
def policy_list(root: Path | None, as_json: bool) -> None:
    """Every policy: id, authority, effective period, outcomes, sha256."""
    from .policy.catalog import list_policies

    rows = list_policies(_policies_dir(root))
    emit({"policies": rows}, as_json, lambda d: "\n".join(
        f"{p['id']:<52} {p['effective_from']}..{p['effective_to'] or 'open':<10} "
        f"{p['outcomes']:>3} outcomes  {p['sha256'][:12]}" for p in d["policies"]))


@policy.command("show")
@click.argument("policy_id")
@click.option("--root", type=click.Path(path_type=Path, file_okay=False), help="policies dir")
@json_option
def policy_show(policy_id: str, root: Path | None, as_json: bool) -> None:
    """One policy in full, with its source and every section citation."""
    from .policy.catalog import show_policy

    d = show_policy(policy_id, _policies_dir(root))

    def text(d: dict[str, Any]) -> str:
        lines = [f"{d['id']}: {d['title']}", f"source: {d['source']['document']} "
                 f"({d['source']['authority']}, {d['source']['date']})"]
        for p in d["problems"]:
            lines.append(f"problem {p['id']} [{p['section']}] met when {p['met_when']}")
            lines.extend(f"  indicator {i['id']}: {i['title']}" for i in p["indicators"])
            lines.extend(f"  outcome {o['id']} [{o['section']}]: {o['title']}"
                         for o in d["outcomes"] if o["problem"] == p["id"])
        lines.extend(f"payment {p['item']}: £{p['amount']} ({p['from']}..{p['to']})"
                     for p in d["payments"])
        return "\n".join(lines)

    emit(d, as_json, text)


@policy.command("check")
@click.argument("path", required=False, type=click.Path(path_type=Path, exists=True))
@json_option
def policy_check(path: Path | None, as_json: bool) -> None:
    """Validate policy files; exit 2 naming file, key and reason for each error."""
    from .policy.catalog import check

    d = check(_policies_dir(path))
    emit(d, as_json, lambda d: "\n".join(
        [f"{len(d['files'])} files, {len(d['policies'])} valid"]
        + [f"{e['file']}: {e['key']}: {e['reason']}" for e in d["errors"]]))
    if not d["ok"]:
        for e in d["errors"]:
            click.echo(f"claimledger: {e['file']}: {e['key']}: {e['reason']}", err=True)
        sys.exit(EXIT_USAGE)


# --- synthetic county and demo -----------------------------------------------------------------
@cli.command("synth")
@click.option("--families", default=3000, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option("--policy", "policy_id", default=None, help="Policy id (default Worcestershire).")
@json_option
def synth_cmd(families: int, seed: int, out: Path, policy_id: str | None, as_json: bool) -> None:
    """Write a deterministic synthetic county's eleven data-match CSV files."""
    from .synth import DEFAULT_POLICY, describe, generate

    r = generate(out, families, seed, policy_id or DEFAULT_POLICY)
    emit(r, as_json, describe)


@cli.command("demo")
@click.option("--families", default=3000, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=2015, show_default=True, type=int)
@click.option("--dir", "workdir", default=".", type=click.Path(path_type=Path, file_okay=False),
              help="Where to build the demo county and ledger (default: here).")
@json_option
def demo_cmd(families: int, seed: int, workdir: Path, as_json: bool) -> None:
    """A synthetic county end to end on the embedded SQLite default."""
    from .demo import run_demo, summary_text

    workdir.mkdir(parents=True, exist_ok=True)
    if (workdir / "claimledger.sqlite").exists():
        raise UsageError(f"{workdir / 'claimledger.sqlite'} exists: run the demo in a fresh "
                         "directory")
    tty = sys.stderr.isatty()

    def progress(label: str, total: int) -> Any:
        return click.progressbar(length=total, label=label, file=sys.stderr)

    program = sys.argv[0] if os.sep in sys.argv[0] else "claimledger"
    program = str(Path(program).resolve()) if os.sep in program else program
    r = run_demo(workdir, families=families, seed=seed, progress=progress if tty else None,
                 log=lambda m: click.echo(m, err=True), program=program)
    emit(r, as_json, summary_text)
    if not r["verify"]["ok"] or (r["bundle"] and not r["bundle"]["ok"]):
        sys.exit(EXIT_FINDING)


# Commands of the audit and report areas live beside this module, on the same group.
from . import cli_audit, cli_claims, cli_report  # noqa: E402,F401


@cli.command("doctor")
@json_option
@pass_settings
def doctor_cmd(settings: Settings, as_json: bool) -> None:
    """Check the set-up: ledger, append-only rights, key files, witness, checkpoint,
    policies. Exit 0 healthy, 1 naming each problem; writes nothing."""
    from .doctor import doctor, render

    report = doctor(settings)
    emit(report, as_json, render)
    if not report["ok"]:
        sys.exit(EXIT_FINDING)


@cli.group()
def keys() -> None:
    """The authority's signing keys."""


@keys.command("rotate")
@click.option("--reason", default="scheduled rotation", help="Why the key is rotated.")
@json_option
@pass_settings
def keys_rotate(settings: Settings, reason: str, as_json: bool) -> None:
    """A new signing key endorsed by the old; old checkpoints keep verifying."""
    r = open_app(settings).rotate_key(reason)
    emit(r, as_json, lambda r: f"signing key rotated: {r['previous_key_id'][:16]}… -> "
                               f"{r['key_id'][:16]}… (old key kept at {r['retired_key']})")


# --- data protection ---------------------------------------------------------------------------
@cli.command("erase")
@click.argument("family")
@click.option("--reason", required=True, help="Why (e.g. retention period ended).")
@json_option
@pass_settings
def erase_cmd(settings: Settings, family: str, reason: str, as_json: bool) -> None:
    """Destroy a family's data key and record the erasure; hashes still verify."""
    from .protection import erase

    r = erase(open_app(settings), family, reason)
    emit(r, as_json, lambda r: f"family {r['family_ref']} erased ({r['event']}): {r['reason']}")


@cli.group()
def retention() -> None:
    """Retention review before erasure."""


@retention.command("list")
@click.option("--older-than", "years", required=True, type=int, metavar="YEARS")
@json_option
@pass_settings
def retention_list_cmd(settings: Settings, years: int, as_json: bool) -> None:
    """Families whose last claim decision or spot check is older than YEARS."""
    from .protection import retention_list

    r = retention_list(open_app(settings), years)
    emit(r, as_json, lambda r: "\n".join(
        [f"{len(r['families'])} families with no claim decision since {r['cutoff']}"]
        + [f"  {f['family_ref']:<16} {f['last_decision_at']}  {f['last_decision']}"
           for f in r["families"]]))
