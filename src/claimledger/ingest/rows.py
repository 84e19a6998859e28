"""Reading a data-match file: its bytes as text, its rows parsed and checked against the
kind's schema in file order, and its reference column read first. Pure: text in, rows out;
nothing here touches the ledger."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from .schemas import BadCell, Schema


def count_rows(path: str | Path) -> int:
    """Data lines in a file (for a progress bar's length; quoted line breaks overcount)."""
    with Path(path).open("rb") as f:
        return max(sum(1 for line in f if line.strip()) - 1, 0)


# --- parsing ----------------------------------------------------------------------------
def decode(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(name, line, None, f"not UTF-8 text (byte {data[e.start]:#04x})") from None


def parse_rows(schema: Schema, name: str, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, values) of each row, in file order; InputError at the first bad one, raised
    when the rows before it have been taken (so a caller checking rows as they come reports
    an earlier row's bad reference first). The header is checked at once.

    Line numbers count the header as line 1. Blank rows (every cell empty) are ignored.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    expected = ",".join(schema.header)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(name, 1, None, f"empty file: expected the header {expected}") from None
    except csv.Error as e:
        raise InputError(name, 1, None, f"bad CSV: {e}") from None
    if tuple(c.strip() for c in header) != schema.header:
        raise InputError(
            name, 1, None,
            f"wrong header for {schema.kind}: expected {expected}, found {','.join(header)}",
        )
    return _rows(schema, name, reader)


def _rows(schema: Schema, name: str, reader: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    expected = ",".join(schema.header)
    width = len(schema.header)
    line = reader.line_num
    parse = schema.compiled
    while True:
        start = line + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise InputError(name, reader.line_num, None, f"bad CSV: {e}") from None
        line = reader.line_num
        if len(cells) != width:
            if not any(c.strip() for c in cells):
                continue
            raise InputError(
                name, start, None, f"expected {width} cells ({expected}), found {len(cells)}"
            )
        try:
            row = parse(cells)
        except BadCell as e:
            if not any(c.strip() for c in cells):
                continue
            raise InputError(name, start, e.column, e.reason) from None
        yield start, row


def first_cells(schema: Schema, text: str) -> set[str]:
    """Every data row's reference cell (family_ref or member_ref), stripped, bad rows
    included: the families a file may touch, known before its rows are parsed, so that a
    large file's rows can be checked and sent on as they are parsed. A file without quotes
    is cut at its line breaks and commas (a fifth of the cost of ``csv``); a quote or a bare
    carriage return, and it is read as CSV, as :func:`parse_rows` reads it."""
    column = schema.header.index(schema.ref)
    plain = text.replace("\r\n", "\n")
    refs: set[str] = set()
    if '"' not in plain and "\r" not in plain:  # rows are exactly its lines
        lines = plain.split("\n")[1:]
        if column == 0:
            refs = {line.split(",", 1)[0].strip() for line in lines}
        else:
            refs = {cells[column].strip() for line in lines
                    if len(cells := line.split(",")) > column}
    else:
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            next(reader, None)
            for cells in reader:
                if len(cells) > column:
                    refs.add(cells[column].strip())
        except csv.Error:  # parse_rows reports it, at its line, once the rows before are in
            pass
    refs.discard("")  # a row without its reference is a bad row (the column is required)
    return refs
