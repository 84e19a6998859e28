"""What the claim report and the spot-check case file share: the stylesheet (screen and A4
print), the page's head and foot, escaping, verdict marks, and short hashes with their full
values collected for an appendix.

Print rules are written for A4 in portrait: cards and tables may break across pages (a tall
card that refused to break would leave half a page empty); only headings, table rows and
small blocks are kept whole.
"""

from __future__ import annotations

import html
from typing import Any

from .. import __version__

SHORT_HASH = 12

CSS = """
:root { --ink:#1b1f24; --muted:#5b6570; --rule:#d5dae0; --ok:#1e6b34; --okbg:#e6f3ea;
  --bad:#9b1c1c; --badbg:#fbe9e9; --accent:#1f4e79; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #f4f5f7;
  font: 14px/1.45 "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif; }
main { max-width: 1100px; margin: 0 auto; background: #fff; padding: 28px 36px 36px; }
header.top { display: flex; justify-content: space-between; align-items: baseline; gap: 12px;
  border-bottom: 3px solid var(--accent); padding-bottom: 8px; margin-bottom: 16px; }
header.top .brand { font-weight: 700; color: var(--accent); letter-spacing: .04em;
  text-transform: uppercase; font-size: 12px; }
header.top .gen { color: var(--muted); font-size: 12px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 22px 0 8px; padding-bottom: 4px; border-bottom: 1px solid
  var(--rule); color: var(--accent); }
h3 { font-size: 14.5px; margin: 14px 0 6px; }
.sub { color: var(--muted); margin: 0 0 12px; }
.verdict { display: flex; flex-wrap: wrap; gap: 8px 18px; align-items: center;
  padding: 12px 16px; border-radius: 6px; border: 1px solid; margin: 8px 0 14px; }
.verdict.ok { background: var(--okbg); border-color: #9fd0ad; }
.verdict.bad { background: var(--badbg); border-color: #e6a5a5; }
.verdict .big { font-size: 21px; font-weight: 700; }
.verdict.ok .big { color: var(--ok); } .verdict.bad .big { color: var(--bad); }
.facts span { display: inline-block; margin-right: 16px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; }
th, td { text-align: left; vertical-align: top; padding: 4px 8px;
  border-bottom: 1px solid var(--rule); }
th { background: #f0f3f7; font-size: 12px; text-transform: uppercase; letter-spacing: .03em;
  color: var(--muted); }
table.kv th { width: 190px; text-transform: none; font-size: 13px; letter-spacing: 0;
  background: #f7f8fa; }
.mono { font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace;
  font-size: 11.5px; }
.nw { white-space: nowrap; }
.wrap { word-break: break-all; }
.met { color: var(--ok); font-weight: 700; white-space: nowrap; }
.notmet { color: var(--bad); font-weight: 700; white-space: nowrap; }
.problem { border: 1px solid var(--rule); border-radius: 6px; margin: 10px 0; }
.problem > .head { display: flex; justify-content: space-between; gap: 10px; padding: 6px 12px;
  background: #f7f8fa; border-bottom: 1px solid var(--rule); border-radius: 6px 6px 0 0; }
.problem table { margin: 0; }
.problem td.id { width: 52px; white-space: nowrap; }
.problem td.def { width: 30%; }
.problem p { margin: 6px 12px; }
ul.reasons { margin: 4px 0 0 18px; padding: 0; }
ul.why { margin: 0; padding: 0 0 0 2px; list-style: none; }
ul.why ul.why { padding-left: 16px; }
ul.why li { margin: 1px 0; }
ul.why .mk { font-weight: 700; margin-right: 3px; }
ul.why .ok > .mk { color: var(--ok); } ul.why .no > .mk { color: var(--bad); }
.note { color: var(--muted); font-size: 12.5px; }
.clause { color: var(--muted); font-size: 12.5px; margin: 4px 0 8px; }
.clause b { color: var(--ink); font-weight: 600; }
svg.timeline { width: 100%; height: auto; border: 1px solid var(--rule); border-radius: 4px; }
svg .lane { font-size: 13px; fill: #222; }
svg .small { font-size: 12px; fill: #555; }
svg .in { font-size: 11px; }
svg .key { font-size: 13px; font-weight: 700; }
.legend { display: flex; flex-wrap: wrap; gap: 3px 16px; font-size: 12px; color: #333;
  margin: 6px 0 4px; }
.legend span { white-space: nowrap; }
.legend svg { vertical-align: -2px; margin-right: 4px; }
.q { border: 1px solid var(--rule); border-left: 6px solid var(--rule); border-radius: 4px;
  padding: 6px 12px 4px; margin: 12px 0; }
.q.yes { border-left-color: var(--ok); } .q.no { border-left-color: var(--bad); }
.q > h2 { border: 0; margin: 2px 0 4px; padding: 0; display: flex;
  justify-content: space-between; gap: 12px; }
.q > h2 .ans { font-size: 16px; }
.q p { margin: 4px 0; }
.q table { margin: 4px 0 6px; }
table.hashes td { padding: 2px 8px; font-size: 11px; }
table.hashes td.full { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace;
  word-break: break-all; }
a { color: var(--accent); }
footer { margin-top: 24px; padding-top: 8px; border-top: 1px solid var(--rule);
  color: var(--muted); font-size: 11.5px; }
@page { size: A4; margin: 10mm 10mm 11mm; }
@media print {
  body { background: #fff; font-size: 8.5pt; line-height: 1.26; }
  main { max-width: none; padding: 0; }
  h1 { font-size: 18pt; }
  h2 { font-size: 12.5pt; margin-top: 14px; break-after: avoid; page-break-after: avoid; }
  h3 { break-after: avoid; page-break-after: avoid; }
  th, td { padding: 2px 5px; }
  th { font-size: 7.5pt; }
  .q { padding: 4px 10px 2px; margin: 8px 0; }
  .q p { margin: 2px 0; }
  table.hashes td { padding: 0 5px; font-size: 7pt; line-height: 1.15; }
  table.kv th { width: 150px; font-size: 9pt; }
  .mono { font-size: 8.5pt; }
  .note, .clause, .legend { font-size: 8.5pt; }
  tr, .problem > .head, .legend, .verdict, .q > h2 { break-inside: avoid;
    page-break-inside: avoid; }
  thead { display: table-header-group; }
  figure.timeline { break-inside: avoid; page-break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  .verdict, th, .q, .problem > .head, svg, table.kv th { -webkit-print-color-adjust: exact;
    print-color-adjust: exact; }
}
figure.timeline { margin: 0; }
"""


def e(text: Any) -> str:
    """HTML-escaped text (quotes too, for attributes)."""
    return html.escape(str(text), quote=True)


def mark(flag: Any, yes: str = "met", no: str = "not met") -> str:
    return f'<span class="met">✓ {yes}</span>' if flag else f'<span class="notmet">✗ {no}</span>'


def head(title: str, brand: str, generated_at: str) -> str:
    """The document's start, up to and including the page header."""
    return ("<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{e(title)}</title>\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
            f'<header class="top"><span class="brand">claimledger · {e(brand)}</span>'
            f'<span class="gen">generated {e(generated_at)} by claimledger {e(__version__)}'
            "</span></header>")


def foot(text: str) -> str:
    return f"<footer>{text}</footer>\n</main>\n</body>\n</html>\n"


class Hashes:
    """Short hashes for the body of a page; every full value once, in an appendix."""

    def __init__(self) -> None:
        self.labels: dict[str, list[str]] = {}

    def short(self, full: str, label: str) -> str:
        """The first :data:`SHORT_HASH` hex digits (the full value on hover and in the
        appendix under ``label``)."""
        if not full:
            return ""
        names = self.labels.setdefault(full, [])
        if label not in names:
            names.append(label)
        return (f'<span class="mono nw" title="{e(full)}">{e(full[:SHORT_HASH])}…</span>')

    def appendix(self, anchor: str = "hashes") -> str:
        if not self.labels:
            return ""
        rows = "".join(f'<tr><td>{e(", ".join(names))}</td><td class="full">{e(full)}</td>'
                       "</tr>" for full, names in self.labels.items())
        return (f'<h2 id="{anchor}">Hashes in full</h2><p class="note">The body shows each '
                f"SHA-256 by its first {SHORT_HASH} hex digits; these are the full values.</p>"
                f'<table class="hashes"><tbody>{rows}</tbody></table>')
