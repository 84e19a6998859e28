"""Reading a data-match file: its lines as text, streamed and hashed, its rows parsed and
checked against the kind's schema in file order, and its reference column read first. Lines
in, rows out; nothing here touches the ledger, and nothing holds the whole file."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import InputError
from .schemas import BadCell, Schema


def count_rows(path: str | Path) -> int:
    """Data lines in a file (for a progress bar's length; quoted line breaks overcount)."""
    with Path(path).open("rb") as f:
        return max(sum(1 for line in f if line.strip()) - 1, 0)


# --- reading ----------------------------------------------------------------------------
#: The longest line a data-match file may have (characters, its line break included): far
#: above any row of the DESIGN's kinds, and what keeps a file without line breaks from being
#: held whole.
MAX_LINE = 1 << 20
#: Bytes read from the file at a time.
READ_BYTES = 1 << 20


class _Hashing(io.RawIOBase):
    """A binary file that hashes every byte read through it, so that a file is hashed as it
    streams past instead of being held to be hashed."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.raw.readinto(b) or 0
        self.sha.update(memoryview(b)[:n])
        return n


class FileLines:
    """A data-match file's lines as text (each with its line break; ``\r\n``, ``\n`` and
    ``\r`` all end one, as the CSV reader wants them), read a buffer at a time and hashed as
    they pass: iterate once, then :attr:`sha256` is the SHA-256 of every byte of the file.

    InputError for a file that cannot be read, a line that is not UTF-8 (its number and the
    first bad byte) or longer than :data:`MAX_LINE`."""

    def __init__(self, name: str, path: str | Path):
        self.name = name
        self.path = Path(path)
        self._hashing: _Hashing | None = None
        self.lines = 0

    @property
    def sha256(self) -> str:
        assert self._hashing is not None, "read the lines first"
        return self._hashing.sha.hexdigest()

    def __iter__(self) -> Iterator[str]:
        try:
            raw = self.path.open("rb", buffering=0)
        except OSError as e:
            raise InputError(self.name, None, None,
                             f"cannot read file: {e.strerror or e}") from None
        with raw:
            self._hashing = _Hashing(raw)  # type: ignore[arg-type]
            text = io.TextIOWrapper(io.BufferedReader(self._hashing, READ_BYTES),
                                    encoding="utf-8-sig", newline="")
            readline = text.readline
            n = 0
            try:
                while line := readline(MAX_LINE + 1):
                    n += 1
                    if len(line) > MAX_LINE:
                        raise InputError(self.name, n, None, f"line longer than {MAX_LINE} "
                                         "characters: not a data-match file")
                    yield line
            except UnicodeDecodeError:
                raise self._not_utf8() from None
            except OSError as e:
                raise InputError(self.name, None, None,
                                 f"cannot read file: {e.strerror or e}") from None
            self.lines = n
            text.detach()

    def _not_utf8(self) -> InputError:
        """Where the file stops being UTF-8: its line and first bad byte (read again, a
        line at a time, only once a file has failed)."""
        with self.path.open("rb") as f:
            for n, line in enumerate(f, start=1):
                try:
                    line.decode("utf-8-sig" if n == 1 else "utf-8")
                except UnicodeDecodeError as e:
                    return InputError(self.name, n, None,
                                      f"not UTF-8 text (byte {line[e.start]:#04x})")
        return InputError(self.name, None, None, "not UTF-8 text")


def count_lines(path: str | Path) -> int:
    """Line breaks in a file, counted a buffer at a time."""
    n = 0
    with Path(path).open("rb") as f:
        while chunk := f.read(READ_BYTES):
            n += chunk.count(b"\n")
    return n


# --- parsing ----------------------------------------------------------------------------
def parse_rows(
    schema: Schema, name: str, lines: Iterable[str]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, values) of each row, in file order; InputError at the first bad one, raised
    when the rows before it have been taken (so a caller checking rows as they come reports
    an earlier row's bad reference first). The header is checked at once.

    Line numbers count the header as line 1. Blank rows (every cell empty) are ignored.
    """
    reader = csv.reader(lines)
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


def ref_cells(schema: Schema, lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line, reference cell) of every data row (family_ref or member_ref, stripped, bad
    rows included, empty ones left out), numbered as :func:`parse_rows` numbers rows: the
    families a file touches and the last line that names each, read before its rows are
    parsed. A line without a quote is one row and is cut at its commas (a fifth of the cost
    of ``csv``); from the first quote on, the rest is read as CSV, as :func:`parse_rows`
    reads it."""
    column = schema.header.index(schema.ref)
    it = iter(lines)
    n = 0
    for line in it:
        n += 1
        if '"' in line:
            break
        if n == 1:
            continue  # the header
        cells = line.split(",", column + 1)
        if len(cells) > column and (ref := cells[column].strip()):
            yield n, ref
    else:
        return
    reader = csv.reader(chain((line,), it))
    at = n - 1  # lines before the reader's first
    try:
        if n == 1:
            next(reader, None)
        while True:
            start = at + reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            if len(cells) > column and (ref := cells[column].strip()):
                yield start, ref
    except csv.Error:  # parse_rows reports it, at its line, once the rows before are in
        return
