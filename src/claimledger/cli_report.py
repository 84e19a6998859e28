"""Reports over the whole cohort (registered on ``cli``)."""

from __future__ import annotations

import csv
import io

import click

from .application import Settings, open_app
from .cli_common import cli, emit, json_option, pass_settings
from .errors import UsageError


@cli.group()
def report() -> None:
    """Figures over the whole cohort, from views kept up to date incrementally."""


@report.command("cohort")
@click.option("--as-of", "as_of", required=True, metavar="DATE", help="Valid date (ISO).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: as_of,group,item,count.")
@click.option("--rebuild", is_flag=True,
              help="Drop the view and replay the whole ledger before reporting.")
@json_option
@pass_settings
def report_cohort(settings: Settings, as_of: str, as_csv: bool, rebuild: bool,
                  as_json: bool) -> None:
    """Families identified and attached, headline problems, claims by route and state.

    Counts the families identified on or before DATE (attached, and with each problem
    evidenced at identification or engagement, by DATE) and the claims dated on or before
    DATE in their state on DATE. The view first applies whatever the ledger gained since
    it was last asked.
    """
    from .audit.cohort import cohort_report, csv_rows, render
    from .evaluate.service import parse_day

    if as_csv and as_json:
        raise UsageError("choose one of --json and --csv")
    day = parse_day(as_of, "--as-of")
    result = cohort_report(open_app(settings), day, fresh=rebuild)
    if as_csv:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(("as_of", "group", "item", "count"))
        w.writerows(csv_rows(result))
        click.echo(buf.getvalue(), nl=False)
        return
    emit(result, as_json, render)


@report.command("claims")
@click.option("--window", nargs=2, required=True, metavar="FROM TO",
              help="Claims dated from FROM to TO (ISO days, both included).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: window,group,item,value.")
@json_option
@pass_settings
def report_claims(settings: Settings, window: tuple[str, str], as_csv: bool,
                  as_json: bool) -> None:
    """Claims dated in the window by state, route and payment; reversals; spot-check
    outcomes (each claim's latest) and the failed share."""
    from .audit.claim_return import render_report, report, report_csv
    from .evaluate.service import parse_day

    if as_csv and as_json:
        raise UsageError("choose one of --json and --csv")
    r = report(open_app(settings), parse_day(window[0], "--window FROM"),
               parse_day(window[1], "--window TO"))
    if as_csv:
        click.echo(report_csv(r), nl=False)
        return
    emit(r, as_json, render_report)
