"""``python -m claimledger.ingest.writer``: the second process of a large file's ingest.

It reads pickled frames from its standard input (the settings, then chunks of sealed
items, then commit or abort) and writes one reply frame to its standard output; see
:class:`claimledger.ingest.sink.WriterProcess`. Its input comes only from the claimledger
process that started it.
"""

from __future__ import annotations

import gc
import sys

from .sink import writer_main

if __name__ == "__main__":
    gc.disable()  # many small objects, no cycles: as the parent runs while it ingests
    writer_main(sys.stdin.buffer, sys.stdout.buffer)
