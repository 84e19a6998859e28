"""Spot checks, evidence bundles, checkpoint proofs and HTML reports (registered on ``cli``).

``verify-bundle`` and ``checkpoint verify-consistency`` never open a ledger: they take a file
and, optionally, the authority's published public key, so a spot-checker runs them anywhere.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .application import Settings, open_app
from .cli_common import (
    EXIT_FINDING,
    OutputFile,
    claim,
    cli,
    emit,
    json_option,
    merkle_root,
    pass_settings,
)
from .domain.claim import REVERSAL_REASONS
from .errors import UsageError


def _day(text: str | None, what: str) -> Any:
    if text is None:
        return None
    from .evaluate.service import parse_day

    return parse_day(text, what)


def _pubkey(path: Path | None) -> bytes | None:
    if path is None:
        return None
    from .ledger.signing import load_public_hex

    return load_public_hex(path.read_text(), str(path))


def _fail(reasons: list[str], as_json: bool) -> None:
    for r in reasons:
        click.echo(f"claimledger: {r}", err=True)
    sys.exit(EXIT_FINDING)


# --- spot checks --------------------------------------------------------------------------------
@cli.group()
def spotcheck() -> None:
    """Draw a recorded, re-derivable sample of claims and record each check's result."""


@spotcheck.command("sample")
@click.option("--rate", required=True, metavar="R", help="Fraction (0.1) or percentage (10%).")
@click.option("--seed", required=True, type=int, metavar="S", help="The random seed (integer).")
@click.option("--from", "from_on", metavar="DATE", help="Only claims claimed on or after.")
@click.option("--to", "to_on", metavar="DATE", help="Only claims claimed on or before.")
@click.option("--stratify", type=click.Choice(["route"]), help="Sample each route separately.")
@json_option
@pass_settings
def spotcheck_sample(settings: Settings, rate: str, seed: int, from_on: str | None,
                     to_on: str | None, stratify: str | None, as_json: bool) -> None:
    """Draw a deterministic sample of standing claims and record it (SpotCheckSample.Drawn)."""
    from .audit import spotcheck as sc

    r = sc.draw(open_app(settings), rate, seed, from_on=_day(from_on, "--from"),
                to_on=_day(to_on, "--to"), stratify=stratify)
    emit(r, as_json, lambda r: (
        f"sample {r['sample_id']}: {len(r['chosen'])} of {r['population']} claims "
        f"(rate {r['rate']}, seed {r['seed']}"
        + (f", stratified by {r['stratify']}" if r["stratify"] else "") + ")\n"
        + "\n".join(f"  {c}" for c in r["chosen"])))


@spotcheck.command("record")
@click.argument("claim_id")
@click.option("--result", required=True, type=click.Choice(["upheld", "failed"]))
@click.option("--reason", required=True, help="What the check found.")
@click.option("--sample", "sample_id", help="The sample (default: the latest that chose it).")
@click.option("--reverse", "reverse", type=click.Choice(REVERSAL_REASONS), metavar="CODE",
              help="With --result failed: reverse the claim too, in the same transaction "
                   f"({', '.join(REVERSAL_REASONS)}).")
@json_option
@pass_settings
def spotcheck_record(settings: Settings, claim_id: str, result: str, reason: str,
                     sample_id: str | None, reverse: str | None, as_json: bool) -> None:
    """Record a spot check's result on a claim (Claim.SpotChecked, with the actor).

    A failed check is repaid by reversing the claim: pass --reverse CODE to record both at
    once, or run the `claim reverse` command it prints."""
    from .audit import spotcheck as sc

    r = sc.record(open_app(settings), claim_id, result, reason, sample_id, reverse)
    emit(r, as_json, lambda r: (
        f"claim {r['claim_id']}: spot check {r['result']} by {r['by']}"
        + (f" (sample {r['sample_id']})" if r["sample_id"] else "")
        + (f"\nclaim {r['claim_id']} reversed ({r['reversed']['reason']}); the next claim "
           "return lists it to repay" if r["reversed"] else "")
        + (f"\nto reverse it (repaid in the next return), run:\n  {r['reverse_command']}\n"
           f"  with CODE one of {', '.join(REVERSAL_REASONS)}"
           if r["reverse_command"] else "")))


@spotcheck.command("list")
@json_option
@pass_settings
def spotcheck_list(settings: Settings, as_json: bool) -> None:
    """Every sample drawn, with the results recorded against it."""
    from .audit import spotcheck as sc

    rows = sc.list_samples(open_app(settings))

    def text(d: dict[str, Any]) -> str:
        lines = []
        for s in d["samples"]:
            lines.append(f"{s['sample_id']} {s['recorded_at'][:19]} by {s['by']}: "
                         f"{len(s['chosen'])} of {s['population']} (rate {s['rate']}, "
                         f"seed {s['seed']})")
            lines.extend(f"  {c:<32} {s['results'].get(c, 'not yet checked')}"
                         for c in s["chosen"])
        return "\n".join(lines) or "no samples"

    emit({"samples": rows}, as_json, text)


@spotcheck.command("verify")
@click.argument("sample_id")
@json_option
@pass_settings
def spotcheck_verify(settings: Settings, sample_id: str, as_json: bool) -> None:
    """Re-derive a recorded sample from its seed and the ledger before it; exit 1 if it differs."""
    from .audit import spotcheck as sc

    r = sc.rederive(open_app(settings), sample_id)
    emit(r, as_json, lambda r: (
        f"sample {r['sample_id']}: " + ("re-derived: same population, same "
                                        f"{len(r['chosen'])} claims" if r["ok"]
                                        else "DIFFERS: " + "; ".join(r["reasons"]))))
    if not r["ok"]:
        _fail(r["reasons"], as_json)


@spotcheck.command("casefile")
@click.argument("sample_id")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="The folder to write (new or empty): index.html and one page a claim.")
@json_option
@pass_settings
def spotcheck_casefile(settings: Settings, sample_id: str, out: Path, as_json: bool) -> None:
    """Write the sample's case file: each claim's page answers the three spot-check
    questions with its evidence and the policy clause (self-contained HTML, prints on A4)."""
    from .audit.casefile import write_casefile

    r = write_casefile(open_app(settings), sample_id, out)
    emit(r, as_json, lambda r: (
        f"{r['index']}: case file for sample {r['sample_id']}, {len(r['claims'])} claims\n"
        + "\n".join(f"  {c['claim_id']:<32} "
                     + " ".join(f"{n}:{'yes' if a else 'no'}"
                                for n, a in enumerate(c["answers"], 1))
                     + f"  {Path(c['file']).name}" for c in r["claims"])))


# --- evidence bundles -----------------------------------------------------------------------------
@cli.command("bundle")
@click.argument("claim_id")
@click.option("--out", required=True, type=OutputFile(),
              help="The zip file to write.")
@json_option
@pass_settings
def bundle_cmd(settings: Settings, claim_id: str, out: Path, as_json: bool) -> None:
    """Write an offline evidence bundle: the claim's events, proofs, checkpoint, keys, policy."""
    from .audit.bundle import write_bundle

    r = write_bundle(open_app(settings), claim_id, out)
    emit(r, as_json, lambda r: (
        f"{r['file']}: claim {r['claim_id']}, {r['events']} events "
        f"({r['family_events']} of family {r['family_ref']}) proven against the checkpoint of "
        f"{r['tree_size']} events signed {r['checkpoint_signed_at']}; sha256 {r['sha256']}"))


@cli.command("verify-bundle")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--pubkey", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="The authority's published public key (hex, as signing.pub holds it).")
@json_option
def verify_bundle_cmd(file: Path, pubkey: Path | None, as_json: bool) -> None:
    """Verify a bundle offline (no database) and re-derive its decision; exit 1 naming what
    failed."""
    from .audit.bundle_check import MAX_BUNDLE_BYTES, check_bundle

    # At most one byte past the bound is read: check_bundle names the size and refuses it.
    try:
        with file.open("rb") as f:
            data = f.read(MAX_BUNDLE_BYTES + 1)
    except OSError as e:
        raise UsageError(f"{file}: cannot read ({e.strerror})") from None
    result = check_bundle(data, trusted_key=_pubkey(pubkey))

    def text(d: dict[str, Any]) -> str:
        if not d["ok"]:
            return f"{file}: INVALID\n" + "\n".join(f"  {r}" for r in result.reasons)
        dec = d["decision"]
        key = ("the key given with --pubkey" if d["key_source"] == "--pubkey"
               else "the bundle's own key (not independently trusted: pass --pubkey)")
        lines = [
            f"{file}: valid bundle for claim {d['claim_id']} (family {d['family_ref']})",
            f"  {d['events']} events ({d['family_events']} of the family) proven against the "
            f"checkpoint of {d['tree_size']} events, root {d['root']}",
            f"  checkpoint signature verified with key {d['key_id'][:16]}…: {key}",
            f"  decision re-derived with {dec['policy_id']} as known at {dec['known_at']}: "
            + ("claimable, " + str(dec["route"]) + " route" if dec["claimable"]
               else "not claimable") + "; matches the recorded decision",
        ]
        lines.extend(f"  note: {n}" for n in d["notes"] if not n.startswith("checkpoint sig"))
        return "\n".join(lines)

    emit(result.to_dict(), as_json, text)
    if not result.ok:
        _fail(result.reasons, as_json)


# --- checkpoints ----------------------------------------------------------------------------------
@cli.group()
def checkpoint() -> None:
    """List signed checkpoints and prove the ledger only grew between two of them."""


@checkpoint.command("list")
@json_option
@pass_settings
def checkpoint_list(settings: Settings, as_json: bool) -> None:
    """Every signed checkpoint: tree size, root, when and by which key (keep one to check
    later)."""
    from .audit.checkpoints import list_checkpoints

    d = list_checkpoints(open_app(settings))
    emit(d, as_json, lambda d: "\n".join(
        f"{c['tree_size']:>9} events  root {c['root']}  signed {c['signed_at'][:19]}"
        for c in d["checkpoints"]) or "no checkpoints")


@checkpoint.command("prove")
@click.argument("first", type=click.IntRange(min=1), metavar="FROM")
@click.argument("second", type=click.IntRange(min=1), required=False, metavar="[TO]")
@click.option("--out", type=OutputFile(),
              help="Write the proof document here (default: print it).")
@json_option
@pass_settings
def checkpoint_prove(settings: Settings, first: int, second: int | None,
                     out: Path | None, as_json: bool) -> None:
    """RFC 9162 consistency proof from tree size FROM to the checkpoint of tree size TO
    (default: the latest), with TO's signed statement."""
    import orjson

    from .audit.checkpoints import prove

    doc = prove(open_app(settings), first, second)
    data = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    if out is None:  # the proof document is itself the one JSON document printed
        click.echo(data.decode(), nl=False)
        return
    out.write_bytes(data)
    emit({"file": str(out), "from": doc["first"]["tree_size"], "to": doc["second"]["tree_size"],
          "hashes": len(doc["proof"])}, as_json,
         lambda r: f"{r['file']}: consistency proof {r['from']} -> {r['to']} "
                   f"({r['hashes']} hashes)")


@checkpoint.command("verify-consistency")
@click.argument("proof", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--kept", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="The checkpoint you kept: JSON with tree_size and root.")
@click.option("--size", "kept_size", type=click.IntRange(min=1), help="Kept tree size.")
@click.option("--root", "kept_root", help="Kept root (hex).")
@click.option("--pubkey", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="The authority's published public key (hex).")
@json_option
def checkpoint_verify_consistency(proof: Path, kept: Path | None, kept_size: int | None,
                                  kept_root: str | None, pubkey: Path | None,
                                  as_json: bool) -> None:
    """Check a consistency proof against a checkpoint you kept (offline, no database)."""
    from .audit.checkpoints import check_consistency, read_kept

    if kept is not None:
        if kept_size is not None or kept_root is not None:
            raise UsageError("give --kept or --size with --root, not both")
        kept_size, kept_root = read_kept(kept.read_bytes(), str(kept))
    elif kept_size is None or kept_root is None:
        raise UsageError("say which checkpoint you kept: --kept FILE, or --size N --root HEX")
    r = check_consistency(proof.read_bytes(), kept_size, merkle_root(kept_root, "--root"),
                          trusted_key=_pubkey(pubkey))
    emit(r.to_dict(), as_json, lambda d: (
        f"consistent: the checkpoint of {d['to']} events (root {d['root']}) extends the "
        f"{d['from']} events you kept; signature checked with "
        + ("the key given with --pubkey" if d["key_source"] == "--pubkey"
           else "the document's own key (pass --pubkey to trust it)")
        if d["ok"] else "NOT CONSISTENT:\n" + "\n".join(f"  {x}" for x in d["reasons"])))
    if not r.ok:
        _fail(r.reasons, as_json)


# --- the auditor's HTML page ----------------------------------------------------------------------
@claim.command("report")
@click.argument("claim_id")
@click.option("--html", "html_out", required=True,
              type=OutputFile(), help="The HTML file to write.")
@json_option
@pass_settings
def claim_report(settings: Settings, claim_id: str, html_out: Path, as_json: bool) -> None:
    """Write one self-contained HTML page explaining the claim (prints on A4)."""
    from .audit.report_html import write_report

    r = write_report(open_app(settings), claim_id, html_out)
    emit(r, as_json, lambda r: (
        f"{r['file']}: claim {r['claim_id']} "
        f"({'claimable' if r['claimable'] else 'not claimable'}), {r['problems']} problems, "
        f"{r['evidence']} evidence records"))
