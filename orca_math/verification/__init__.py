"""Verifying answers: the program sandbox (and, built on it, the verifiers).

`run_program` runs a model-written Python program in a locked-down worker process and reads the
`answer` it assigns; `Sandbox` is the pool of such workers, for callers that want their own limits.
See docs/verification.md.
"""

from orca_math.verification.sandbox import (
    ProgramResult,
    Sandbox,
    SandboxUnavailableError,
    run_program,
    run_program_async,
)

__all__ = [
    "ProgramResult",
    "Sandbox",
    "SandboxUnavailableError",
    "run_program",
    "run_program_async",
]
