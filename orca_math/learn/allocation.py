"""How many responses the learning loop samples per problem: `uniform` (k each) or `prop2diff`.

DART-Math showed that spending the sampling budget by difficulty beats spending it evenly at the
same cost ("Prop2Diff": more samples for the problems the model fails). Here a problem's difficulty
is its fail rate, ``1 - pass_rate``, where ``pass_rate`` is the column the generation pipeline's
`Difficulty` stage writes (``orca-math generate --student``). The budget stays that of `uniform`,
``k`` times the number of problems, and is shared in proportion to the fail rates:

    allocate_samples(problems, k=4, policy="prop2diff")   # {"p1": 8, "p2": 0, ...}

A problem every sample solved gets none; no problem gets more than `max_factor` × k (the budget
left over by that cap is not spent). When every problem was solved, there is no difficulty to
follow, and every problem gets k.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from orca_math.errors import ConfigError

#: The sampling policies, `uniform` first (today's behaviour and the default).
SAMPLING_POLICIES = ("uniform", "prop2diff")


def check_policy(policy: Any) -> str:
    """`policy` checked: one of `SAMPLING_POLICIES`.

    Raises:
        ConfigError: anything else, in one sentence.
    """
    if policy not in SAMPLING_POLICIES:
        raise ConfigError(f"unknown sampling policy {policy!r}; use {' or '.join(SAMPLING_POLICIES)}.")
    return policy


def allocate_samples(problems: Sequence[Mapping[str, Any]], *, k: int, policy: str = "uniform",
                     max_factor: int = 4) -> dict[str, int]:
    """Samples per problem id under `policy`, for a budget of `k` × the number of problems.

    Args:
        problems: rows with ``id`` and, for prop2diff, ``pass_rate`` (0 to 1).
        k: the samples per problem of the uniform policy.
        policy: "uniform" or "prop2diff".
        max_factor: prop2diff gives no problem more than this many times k.

    Raises:
        ConfigError: an unknown policy, or (prop2diff) a problem without a pass rate in [0, 1].
    """
    check_policy(policy)
    if policy == "uniform":
        return {str(problem["id"]): k for problem in problems}
    fails: dict[str, float] = {}
    for problem in problems:
        rate = problem.get("pass_rate")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ConfigError(f"prop2diff needs each problem's pass_rate (0 to 1); problem {problem.get('id')!r} has "
                              f"{rate!r}: measure it with orca-math generate --student SPEC.")
        fails[str(problem["id"])] = 1.0 - float(rate)
    total = sum(fails.values())
    if total == 0:
        return dict.fromkeys(fails, k)
    budget = k * len(fails)
    exact = {pid: budget * fail / total for pid, fail in fails.items()}
    counts = {pid: math.floor(value) for pid, value in exact.items()}
    # Largest remainders first (ties in input order), so the counts add up to the budget.
    order = sorted(exact, key=lambda pid: counts[pid] - exact[pid])
    for pid in order[: budget - sum(counts.values())]:
        counts[pid] += 1
    cap = max_factor * k
    return {pid: min(count, cap) for pid, count in counts.items()}


__all__ = ["SAMPLING_POLICIES", "allocate_samples", "check_policy"]
