"""Verification: the gate that decides which candidates a user may see, and the sandbox that
runs every subprocess localcode starts (lint, type check, tests)."""

from .gate import Gate, rank
from .lint import Diagnostic, digest_ruff
from .request import VerifyRequest
from .safety import bad_candidate_problem, is_protected_path
from .sandbox import Limits, ProcessResult, Sandbox, isolation_description, run_sandboxed
from .testrun import digest_pytest

__all__ = [
    "Diagnostic",
    "Gate",
    "Limits",
    "ProcessResult",
    "Sandbox",
    "VerifyRequest",
    "bad_candidate_problem",
    "digest_pytest",
    "digest_ruff",
    "is_protected_path",
    "isolation_description",
    "rank",
    "run_sandboxed",
]
