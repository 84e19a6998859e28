"""A folder of policies: listing, checking (each file, and no two plans of one authority in
force on the same day), finding one by id, and the one in force for an authority on a date.
Reading and validating one file is ``load``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ..errors import EvaluationError, PolicyError, UsageError
from .load import _overlap, _parse, _validate, expected_id, load_policy_file
from .model import Policy


def policy_files(root: str | Path = "policies") -> list[Path]:
    """Every ``<root>/<authority>/<plan>.toml``, in id order."""
    return sorted(Path(root).glob("*/*.toml"))


@dataclass(frozen=True, slots=True)
class PolicyCheckResult:
    """What ``policy check`` reports: the policies that loaded and every error found."""

    files: tuple[str, ...]
    policies: tuple[Policy, ...]
    errors: tuple[PolicyError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(str(e) for e in self.errors)


def _overlaps(policies: Sequence[Policy]) -> list[PolicyError]:
    errors: list[PolicyError] = []
    by_dir: dict[str, list[Policy]] = {}
    for p in policies:
        by_dir.setdefault(p.directory, []).append(p)
    for group in by_dir.values():
        group.sort(key=lambda p: (p.effective_from, p.id))
        for i, later in enumerate(group):
            for earlier in group[:i]:
                if _overlap(earlier.effective_from, earlier.effective_to,
                            later.effective_from, later.effective_to):
                    errors.append(PolicyError(
                        later.path, "effective_from",
                        f"period {later.period()} overlaps {earlier.id} ({earlier.period()}): "
                        f"the policy in force for an authority on a date must be unique"))
    return errors


def check_policies(root_or_paths: str | Path | Iterable[str | Path] = "policies"
                   ) -> PolicyCheckResult:
    """Validate a policies directory (or given files) and report every error, raising none."""
    errors: list[PolicyError] = []
    if isinstance(root_or_paths, str | Path):
        target = Path(root_or_paths)
        paths = policy_files(target) if target.is_dir() else [target]
        if target.is_dir():
            errors += [PolicyError(str(p), "", "not read: a policy file lives at "
                                                f"{target}/<authority>/<plan>.toml")
                       for p in sorted(target.rglob("*.toml")) if p not in paths]
    else:
        paths = [Path(p) for p in root_or_paths]
    policies: list[Policy] = []
    for path in paths:
        try:
            data = path.read_bytes()
            policy, errs = _validate(_parse(data, str(path)), data, str(path))
        except OSError as e:
            errs, policy = [PolicyError(str(path), "", f"cannot read: {e.strerror}")], None
        except PolicyError as e:
            errs, policy = [e], None
        except RecursionError:
            errs = [PolicyError(str(path), "", "nested too deeply to be a policy")]
            policy = None
        errors += errs
        if policy is not None:
            policies.append(policy)
    errors += _overlaps(policies)
    return PolicyCheckResult(tuple(str(p) for p in paths), tuple(policies), tuple(errors))


def load_policies(root: str | Path = "policies") -> list[Policy]:
    """Every policy under ``root``, validated, with no overlapping periods per authority."""
    policies = [load_policy_file(p) for p in policy_files(root)]
    errors = _overlaps(policies)
    if errors:
        raise errors[0]
    return policies


def find_policy(policy_id: str, root: str | Path = "policies") -> Policy:
    """Load one policy by id (``worcestershire/stronger-families-2015-16``)."""
    if expected_id(policy_id + ".toml") != policy_id or ".." in policy_id:
        raise UsageError(f"'{policy_id}' is not a policy id (<authority>/<plan>)")
    path = Path(root) / f"{policy_id}.toml"
    if not path.is_file():
        known = ", ".join(p.parent.name + "/" + p.stem for p in policy_files(root)) or "none"
        raise UsageError(f"no policy '{policy_id}' under {root} (known: {known})")
    return load_policy_file(path)


def policy_in_force(policies: Iterable[Policy], authority_or_policy_id: str, on: date) -> Policy:
    """The one policy in force on ``on`` for an authority.

    ``authority_or_policy_id`` may be the authority's directory (``worcestershire``), its name
    (``Worcestershire``) or any policy id of it (a family names the plan it was identified
    under; a later claim is decided by the plan in force on the claim's date).
    """
    key = authority_or_policy_id.strip()
    slug = key.split("/", 1)[0] if "/" in key else key
    mine = [p for p in policies
            if p.directory == slug or p.authority.casefold() == key.casefold()]
    if not mine:
        raise EvaluationError(f"no policy for '{key}'")
    current = [p for p in mine if p.in_force(on)]
    if not current:
        have = "; ".join(f"{p.id} {p.period()}" for p in sorted(mine, key=lambda p: p.id))
        raise EvaluationError(f"no policy for '{key}' is in force on {on} (have: {have})")
    if len(current) > 1:
        raise EvaluationError(f"{len(current)} policies for '{key}' are in force on {on}: "
                              + ", ".join(p.id for p in current))
    return current[0]
