"""Who may write what: actors, their roles, and the role each kind of event needs.

Actors and roles come from a TOML file named by ``CLAIMLEDGER_ACTORS``::

    [actors]
    "dana" = ["data"]
    "pat" = ["practitioner"]
    "alex" = ["auditor"]
    "root" = ["admin"]

Without that file the ledger runs single-user (every actor may do everything), as the
embedded default does on one machine. With it, every write is checked where it happens, at
the one place events are saved, so no command can write what its actor may not: the check
names the role needed. The actor is recorded in every event's envelope.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from pathlib import Path

from .errors import ConfigError, PermissionDeniedError

ROLES = ("practitioner", "data", "auditor", "admin")

#: Event type (qualified class name) -> the role that may record it. Types not listed
#: (checkpoints, policy versions) are bookkeeping any known actor's command may append.
ROLE_FOR_EVENT: dict[str, str] = {
    "Family.Registered": "data",
    "Family.MemberAdded": "data",
    "Family.IndicatorRecorded": "data",
    "Family.Attached": "data",
    "Family.AttendanceRecorded": "data",
    "Family.IncidentRecorded": "data",
    "Family.EmploymentRecorded": "data",
    "Family.CareStatusRecorded": "data",
    "Family.Corrected": "data",
    "Family.ScoreRecorded": "practitioner",
    "Family.JudgementRecorded": "practitioner",
    "Family.AttestationRecorded": "practitioner",
    "Family.Erased": "admin",
    "Claim.Submitted": "auditor",
    "Claim.Validated": "auditor",
    "Claim.Rejected": "auditor",
    "Claim.Withdrawn": "auditor",
    "Claim.Reversed": "auditor",
    "Claim.SpotChecked": "auditor",
    "ClaimRun.Recorded": "auditor",
    "SpotCheckSample.Drawn": "auditor",
    "Ledger.Initialised": "admin",
    "Ledger.KeyRotated": "admin",
}


class Actors:
    """The actors file, or single-user mode when there is none."""

    def __init__(self, roles: dict[str, frozenset[str]] | None, source: str | None = None):
        self.roles = roles
        self.source = source

    @classmethod
    def from_env(cls) -> Actors:
        path = os.environ.get("CLAIMLEDGER_ACTORS")
        if not path:
            return cls(None)
        try:
            data = tomllib.loads(Path(path).read_text())
        except OSError as e:
            raise ConfigError(f"{path}: cannot read the actors file ({e.strerror})") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML ({e})") from None
        actors = data.get("actors")
        if not isinstance(actors, dict):
            raise ConfigError(f"{path}: needs an [actors] table of name = [roles]")
        roles: dict[str, frozenset[str]] = {}
        for name, rs in actors.items():
            if not isinstance(rs, list) or not all(r in ROLES for r in rs):
                raise ConfigError(
                    f"{path}: actors.{name}: roles must be a list of {', '.join(ROLES)}"
                )
            roles[name] = frozenset(rs)
        return cls(roles, path)

    def require(self, actor: str, role: str, doing: str) -> None:
        if self.roles is None:
            return
        have = self.roles.get(actor)
        if have is None:
            raise PermissionDeniedError(
                f"actor {actor!r} is not in {self.source}; {doing} needs the {role} role"
            )
        if role not in have and "admin" not in have:
            raise PermissionDeniedError(
                f"actor {actor!r} ({', '.join(sorted(have)) or 'no roles'}) may not {doing}: "
                f"it needs the {role} role"
            )

    def require_known(self, actor: str, doing: str) -> None:
        if self.roles is not None and actor not in self.roles:
            raise PermissionDeniedError(f"actor {actor!r} is not in {self.source}; cannot {doing}")

    def check_events(self, actor: str, types: Iterable[str]) -> None:
        """Every event about to be written must be one the actor's roles allow."""
        if self.roles is None:
            return
        self.require_known(actor, "write to the ledger")
        for t in dict.fromkeys(types):
            role = ROLE_FOR_EVENT.get(t)
            if role is not None:
                self.require(actor, role, f"record {t}")
