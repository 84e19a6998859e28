"""What every command module shares: the click group and its global options, the ``claim``
group, ``--json`` and rendering, output-file checks, and the exit codes. The command modules
(cli, cli_audit, cli_report) import this one; it imports none of them."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import orjson

from . import __version__
from .application import Settings
from .errors import UsageError

EXIT_FINDING = 1
EXIT_USAGE = 2
#: An error no user caused (a defect): one line naming it, the traceback with --debug.
EXIT_INTERNAL = 70


class OutputFile(click.Path):
    """A file the command will write: its folder must exist and be writable, checked when
    the option is read, before the command does any work."""

    def __init__(self) -> None:
        super().__init__(path_type=Path, dir_okay=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        path = Path(super().convert(value, param, ctx))
        folder = path.parent
        if not folder.is_dir():
            self.fail(f"{path}: folder {folder} does not exist", param, ctx)
        if not os.access(folder, os.W_OK):
            self.fail(f"{path}: folder {folder} is not writable", param, ctx)
        if path.is_dir():
            self.fail(f"{path}: is a folder, expected a file name", param, ctx)
        return path


def merkle_root(text: str, where: str) -> str:
    """A Merkle root as the user typed it: 64 hex digits, or a UsageError (not a finding)."""
    root = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", root):
        raise UsageError(f"{where}: {text!r} is not a Merkle root (64 hex digits)")
    return root


class CliContext:
    def __init__(self, settings: Settings):
        self.settings = settings


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")(f)


def emit(data: Any, as_json: bool, text: Callable[[Any], str] | str | None = None) -> None:
    if as_json:
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    elif callable(text):
        click.echo(text(data))
    elif text is not None:
        click.echo(text)
    else:
        for k, v in data.items():
            click.echo(f"{k}: {v}")


def pass_settings(f: Callable[..., Any]) -> Callable[..., Any]:
    @click.pass_obj
    @functools.wraps(f)
    def wrapper(obj: CliContext, *args: Any, **kwargs: Any) -> Any:
        return f(obj.settings, *args, **kwargs)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="claimledger")
@click.option("--db", envvar="CLAIMLEDGER_DB", metavar="URL",
              help="SQLAlchemy URL of the ledger (default sqlite:///claimledger.sqlite).")
@click.option("--key-dir", envvar="CLAIMLEDGER_KEY_DIR", type=click.Path(path_type=Path),
              help="Directory of the authority's signing key (default ./.claimledger).")
@click.option("--now", envvar="CLAIMLEDGER_NOW", metavar="TIME",
              help="Transaction time for this command (ISO), e.g. to load history.")
@click.option("--actor", envvar="CLAIMLEDGER_ACTOR", help="Who is acting (recorded in events).")
@click.option("--debug", is_flag=True, envvar="CLAIMLEDGER_DEBUG",
              help="Show the traceback of an unexpected error.")
@click.pass_context
def cli(ctx: click.Context, db: str | None, key_dir: Path | None, now: str | None,
        actor: str | None, debug: bool) -> None:
    """claimledger: a replayable, hash-chained, signed ledger of payment-by-results claims."""
    ctx.obj = CliContext(Settings(db=db, key_dir=key_dir, now=now, actor=actor))


@cli.group()
def claim() -> None:
    """Submit, validate, reject, withdraw, list and explain claims."""
