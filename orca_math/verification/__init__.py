"""Verifying answers: the verifiers the Verify stage takes, and the program sandbox.

`Verifier` is the base class of the checks (`KnownTarget`, `Majority`, `ProgramCheck`, or your own).
`run_program` runs a model-written Python program in a locked-down worker process and reads the
`answer` it assigns; `Sandbox` is the pool of such workers, for callers that want their own limits.
See docs/verification.md.
"""

from orca_math.records import Verification
from orca_math.verification.sandbox import (
    ProgramResult,
    Sandbox,
    SandboxUnavailableError,
    run_program,
    run_program_async,
)
from orca_math.verification.verifiers import (
    VERIFIERS,
    KnownTarget,
    Majority,
    ProgramCheck,
    Verifier,
    VerifyContext,
    resolve_verifier,
)

__all__ = [
    "VERIFIERS",
    "KnownTarget",
    "Majority",
    "ProgramCheck",
    "ProgramResult",
    "Sandbox",
    "SandboxUnavailableError",
    "Verification",
    "Verifier",
    "VerifyContext",
    "resolve_verifier",
    "run_program",
    "run_program_async",
]
