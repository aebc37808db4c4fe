"""The Orca-Math recipe's stages (`default_stages`), and the checks a list of stages must pass."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from orca_math.engine.stage import Stage
from orca_math.errors import ConfigError
from orca_math.models import ModelLike
from orca_math.pipeline.generation import Expand, Filter, Harden, Solve, Verify
from orca_math.pipeline.quality_stages import Decontaminate, Dedup
from orca_math.verification.verifiers import Majority, Verifier, resolve_verifier


def default_stages(
    *,
    rounds: int = 2,
    solutions: int = 1,
    verify: Verifier | str | None = "program",
    verify_model: ModelLike | None = None,
    keep_unverified: bool = False,
    keep_rounds: str = "all",
    max_answer_chars: int = 1800,
    dedup: bool = True,
    decontaminate: bool = True,
    expand: bool = True,
    benchmarks_dir: str | Path | None = None,
) -> list[Stage]:
    """The Orca-Math recipe: expand → harden → dedup → decontaminate → solve → verify → filter.

    Dedup and decontamination run before solving, so no teacher call is spent on a problem that
    would be thrown away. Every kept row is verified: against its known answer where it has one,
    else by `verify` ("program" by default: one extra call per hardened problem).

    Args:
        rounds: Suggester/Editor hardening rounds (the paper: 2); 0 leaves the Harden stage out.
        solutions: Teacher solutions per problem (at least 2 for `verify="majority"`).
        verify: how problems without a known answer are verified: "program", "majority", a
            `Verifier`, or None to keep them unchecked.
        verify_model: a second model for the verifier's agents (the program writer); default: the
            pipeline's model.
        keep_unverified: keep problems the verifier could not confirm (marked `verified: false`)
            instead of dropping them as `unverified`.
        keep_rounds: keep every round's problem ("all") or only the last ("last").
        max_answer_chars: drop answers longer than this (the paper: 1,800).
        dedup, decontaminate, expand: include those stages.
        benchmarks_dir: local copies of the benchmark test sets for decontamination.

    Raises:
        ConfigError: `verify="majority"` with fewer than 2 solutions, or a `verify_model` for a
            verifier that calls no model.
    """
    verifier = resolve_verifier(verify)
    if verify_model is not None and not (verifier is not None and verifier.agents):
        raise ConfigError(f"verify_model is only used by a verifier that calls a model (such as 'program'), "
                          f"not by verify={verify!r}")
    if isinstance(verifier, Majority) and solutions < verifier.min_solutions:
        raise ConfigError(f"majority verification needs at least {verifier.min_solutions} solutions per problem; "
                          f"got solutions={solutions} (on the command line: --verify majority --solutions 4)")
    stages: list[Stage] = [Expand()] if expand else []
    if rounds != 0:  # 0 skips hardening; a negative number is Harden's error
        stages.append(Harden(rounds=rounds, keep=keep_rounds))  # type: ignore[arg-type]
    if dedup:
        stages.append(Dedup())
    if decontaminate:
        stages.append(Decontaminate(benchmarks_dir=str(benchmarks_dir) if benchmarks_dir else None))
    stages += [Solve(k=solutions), Verify(verifier, keep_unverified=keep_unverified, model=verify_model), Filter(max_answer_chars=max_answer_chars)]
    return stages


def check_majority_sampling(stages: Sequence[Stage]) -> None:
    """A majority vote needs several solutions sampled above temperature 0 (k greedy copies always agree)."""
    solve = None
    for stage in stages:
        if isinstance(stage, Solve):
            solve = stage
        elif isinstance(stage, Verify) and isinstance(stage.verifier, Majority) and solve is not None:
            if solve.k < stage.verifier.min_solutions:
                raise ConfigError(f"majority verification needs at least {stage.verifier.min_solutions} solutions per "
                                  f"problem; the Solve stage has k={solve.k}")
            if solve.temperature is not None and solve.temperature <= 0:
                raise ConfigError(f"majority verification needs solutions sampled above temperature 0; the Solve "
                                  f"stage has k={solve.k} at temperature={solve.temperature}, whose solutions "
                                  "always agree")


__all__ = ["check_majority_sampling", "default_stages"]
