"""One error hierarchy, rooted at :class:`ClaimLedgerError`.

Every error knows its exit code so the CLI maps errors to exits in one place:
``2`` for bad usage or input (nothing was written), ``1`` for a negative finding
(tampering, an invalid bundle, erased data). Messages say where, what was found and
what was expected.
"""

from __future__ import annotations


class ClaimLedgerError(Exception):
    """Base of every error claimledger raises on purpose."""

    exit_code = 2


class UsageError(ClaimLedgerError):
    """The command was asked something it cannot do (bad option, unknown id, no ledger)."""


class ConfigError(ClaimLedgerError):
    """The environment is wrong: bad database URL, missing key file, bad clock."""


class ClockError(ConfigError):
    """The ledger clock would go backwards."""


class ConflictError(ClaimLedgerError):
    """Another writer appended to the same stream first; reload and retry."""


class WriterBusyError(ClaimLedgerError):
    """Another writer held the ledger's writers' lock for longer than this one would wait;
    nothing was written and the command can be run again."""


class InputError(ClaimLedgerError):
    """A data file is bad. Names file, line, column and reason; nothing was written."""

    def __init__(self, file: str, line: int | None, column: str | None, reason: str):
        self.file, self.line, self.column, self.reason = file, line, column, reason
        where = file
        if line is not None:
            where += f":{line}"
        if column:
            where += f" column {column}"
        super().__init__(f"{where}: {reason}")


class PolicyError(ClaimLedgerError):
    """A policy file is invalid. Names file, key and reason."""

    def __init__(self, file: str, key: str, reason: str):
        self.file, self.key, self.reason = file, key, reason
        super().__init__(f"{file}: {key}: {reason}" if key else f"{file}: {reason}")


class EvaluationError(ClaimLedgerError):
    """A question cannot be answered as asked (no policy in force, unknown family)."""


class ClaimRefusedError(ClaimLedgerError):
    """A claim cannot be submitted or moved as asked; carries the reasons."""

    def __init__(self, message: str, reasons: list[str] | tuple[str, ...] = ()):
        self.reasons = list(reasons)
        super().__init__(message if not reasons else message + ": " + "; ".join(reasons))


class PermissionDeniedError(ClaimLedgerError):
    """The actor lacks the role the command needs."""


class IntegrityError(ClaimLedgerError):
    """The ledger or a bundle failed verification: names the exact event or byte."""

    exit_code = 1


class ErasedError(ClaimLedgerError):
    """The family's personal data was erased; the question cannot be answered."""

    exit_code = 1
