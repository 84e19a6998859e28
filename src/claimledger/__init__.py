"""claimledger: a bitemporal, hash-chained, signed audit ledger for payment-by-results claims."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("claimledger")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"
