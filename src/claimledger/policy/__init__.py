"""Policies: Outcomes Plans as validated data, and the measure kinds they are written in.

``load`` reads and validates one policy file, ``library`` a folder of them (listing, checking,
finding, the plan in force), ``model`` holds what they say, ``measures`` the
nine pure measure kinds, ``catalog`` plain-data views for the CLI and ``cases`` the policy
test cases written from the source documents.
"""

from .library import PolicyCheckResult, check_policies, find_policy, load_policies, policy_in_force
from .load import load_policy_bytes, load_policy_file
from .measures import KINDS, MeasureResult, evaluate_measure
from .model import Policy

__all__ = [
    "KINDS",
    "MeasureResult",
    "Policy",
    "PolicyCheckResult",
    "check_policies",
    "evaluate_measure",
    "find_policy",
    "load_policies",
    "load_policy_bytes",
    "load_policy_file",
    "policy_in_force",
]
