"""Claim windows, the return, reversals (registered on the ``claim`` group).

See docs/claim-cycle.md for the cycle these commands make: run a window dry, submit it with
its return, audit and spot-check, reverse what fails, and the next return repays it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .application import Settings, open_app
from .cli_common import EXIT_FINDING, OutputFile, claim, emit, json_option, pass_settings
from .domain.claim import REVERSAL_REASONS
from .errors import UsageError


class ReturnFile(OutputFile):
    """A claim return to write: .xlsx, .csv or .json, checked before any work is done."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        from .audit.claim_return import return_format

        path = super().convert(value, param, ctx)
        try:
            return_format(path)
        except UsageError as e:
            self.fail(str(e), param, ctx)
        return path


def _window(window: tuple[str, str]) -> tuple[Any, Any]:
    from .evaluate.service import parse_day

    return parse_day(window[0], "--window FROM"), parse_day(window[1], "--window TO")


_WINDOW_HELP = ("The window's first and last days (ISO). A family belongs to it when it is "
                "claimable on the as-of day and was not claimable the day before FROM, or "
                "was but has not been claimed (carried forward).")


def _render_run(r: dict[str, Any]) -> str:
    fam = r["families"]
    lines = [f"window {r['from']}..{r['to']} as of {r['as_of']}: {fam.get('evaluated', 0)} "
             f"families evaluated, {fam.get('already_claimed', 0)} already claimed, "
             f"{fam.get('not_eligible', 0)} not eligible"
             + (f", {fam['erased']} erased" if fam.get("erased") else "")]
    counts = ", ".join(f"{k} {n}" for k, n in r["counts"].items())
    lines.append(f"claimable: {len(r['claimable'])}" + (f" ({counts})" if counts else "")
                 + f", total {r['totals']['total']}")
    lines += [f"  {c['claim_id']:<32} {c['item'] or c['route']:<24} {c['amount'] or 'n/a':>9}"
              f"  {'reached in the window' if c['reached'] == 'in_window' else 'carried forward'}"
              for c in r["claimable"]]
    if r["near_misses"]:
        lines.append(f"near misses: {len(r['near_misses'])}")
        lines += [f"  {n['family_ref']}: " + "; ".join(n["reasons"]) for n in r["near_misses"]]
    if r["audit"]:
        a = r["audit"]
        lines.append(f"internal audit: {len(a['chosen'])} of {len(a['population'])} sampled "
                     f"(rate {a['rate']}, seed {a['seed']})"
                     + "".join(f"\n  {c}" for c in a["chosen"]))
    if r["dry_run"]:
        lines.append("dry run: nothing written (add --submit to claim these families)")
    elif r["run_id"]:
        lines.append(f"claim run {r['run_id']}: {len(r['submitted'])} claims submitted; "
                     f"checkpoint of {r['checkpoint']['tree_size']} events signed")
    else:
        lines.append("nothing to claim: nothing written")
    if r.get("return"):
        ret = r["return"]
        lines.append(f"return {ret['file']}: {ret['claims']} claims, {ret['total_claimed']} "
                     f"claimed, {ret['total_to_repay']} to repay")
    return "\n".join(lines)


@claim.command("run")
@click.option("--window", nargs=2, required=True, metavar="FROM TO", help=_WINDOW_HELP)
@click.option("--as-of", "as_of", metavar="DATE",
              help="Evaluate and date the claims on this day (default: the window's last).")
@click.option("--submit", is_flag=True,
              help="Record every claimable family's claim, the run and one checkpoint.")
@click.option("--return", "return_file", type=ReturnFile(), metavar="FILE",
              help="Also write the return (.xlsx, .csv or .json); a draft without --submit.")
@click.option("--audit-rate", metavar="R", help="Draw the internal-audit sample (0.1 or 10%).")
@click.option("--seed", type=int, metavar="S", help="The internal-audit sample's seed.")
@json_option
@pass_settings
def claim_run(settings: Settings, window: tuple[str, str], as_of: str | None, submit: bool,
              return_file: Path | None, audit_rate: str | None, seed: int | None,
              as_json: bool) -> None:
    """Evaluate every family for a claim window; with --submit, claim the claimable ones in
    one transaction, recorded as a re-derivable claim run sealed by one checkpoint.

    Without --submit nothing is written to the ledger. Running a window again claims nothing
    new (its families are claimed)."""
    from .audit import claim_return
    from .audit.claim_run import run
    from .evaluate.service import parse_day

    app = open_app(settings)
    lo, hi = _window(window)
    r = run(app, lo, hi, as_of=parse_day(as_of, "--as-of") if as_of else None,
            submit=submit, audit_rate=audit_rate, audit_seed=seed)
    if return_file is not None:
        from .audit.claim_run import find_run

        recorded = find_run(app, r["run_id"]) if r["run_id"] else None
        r["return"] = claim_return.write(claim_return.build(app, recorded, r), return_file)
    emit(r, as_json, _render_run)


@claim.command("runs")
@json_option
@pass_settings
def claim_runs(settings: Settings, as_json: bool) -> None:
    """Every recorded claim run: window, claims, totals."""
    from .audit.claim_run import runs

    rows = [{k: v for k, v in r.items() if k != "audit"} | {"audited": bool(r["audit"])}
            for r in runs(open_app(settings))]
    emit({"runs": rows}, as_json, lambda d: "\n".join(
        f"{r['run_id']} {r['from_on']}..{r['to_on']} as of {r['as_of']}: "
        f"{len(r['claim_ids'])} claims, total {r['totals']['total']} (by {r['by']}, "
        f"{r['recorded_at'][:19]})" for r in d["runs"]) or "no claim runs")


@claim.command("run-verify")
@click.argument("run_id")
@json_option
@pass_settings
def claim_run_verify(settings: Settings, run_id: str, as_json: bool) -> None:
    """Re-derive a recorded run's claims, totals and internal-audit sample from the ledger;
    exit 1 naming what differs."""
    from .audit.claim_run import rederive

    r = rederive(open_app(settings), run_id)
    emit(r, as_json, lambda r: (
        f"claim run {r['run_id']}: re-derived: {r['claims']} claims, total "
        f"{r['totals']['total']}"
        + ("" if r["audit_chosen"] is None else
           f", the same {len(r['audit_chosen'])} claims sampled for internal audit")
        if r["ok"] else f"claim run {r['run_id']}: DIFFERS: " + "; ".join(r["reasons"])))
    if not r["ok"]:
        for reason in r["reasons"]:
            click.echo(f"claimledger: {reason}", err=True)
        sys.exit(EXIT_FINDING)


@claim.command("return")
@click.option("--window", nargs=2, metavar="FROM TO",
              help="The window whose latest run the return is for.")
@click.option("--run", "run_id", metavar="ID", help="The claim run (instead of --window).")
@click.option("--out", required=True, type=ReturnFile(), metavar="FILE",
              help="The return to write: .xlsx, .csv or .json.")
@json_option
@pass_settings
def claim_return_cmd(settings: Settings, window: tuple[str, str] | None, run_id: str | None,
                     out: Path, as_json: bool) -> None:
    """Write the return of a recorded claim run: summary, schedule, reversals to repay."""
    from .audit import claim_return
    from .audit.claim_run import find_run

    if (window is None) == (run_id is None):
        raise UsageError("say which run: --window FROM TO or --run ID")
    app = open_app(settings)
    recorded = find_run(app, run_id, _window(window) if window else None)
    r = claim_return.write(claim_return.build(app, recorded), out)
    emit(r, as_json, lambda r: (f"{r['file']}: {r['claims']} claims, {r['total_claimed']} "
                                f"claimed, {r['total_to_repay']} to repay"))


@claim.command("reverse")
@click.argument("claim_id")
@click.option("--reason", required=True, type=click.Choice(REVERSAL_REASONS),
              help="Why the claim is reversed.")
@click.option("--note", help="What was found (recorded with the reversal).")
@json_option
@pass_settings
def claim_reverse(settings: Settings, claim_id: str, reason: str, note: str | None,
                  as_json: bool) -> None:
    """Reverse a submitted or validated claim after a failed audit or spot check: its state
    becomes reversed and the next claim return lists its payment to repay."""
    from .audit import claims

    r = claims.reverse(open_app(settings), claim_id, reason, note)
    emit(r, as_json, lambda r: f"claim {r['claim_id']} is now reversed ({r['reason']}, by "
                               f"{r['by']}); the next claim return lists it to repay")
