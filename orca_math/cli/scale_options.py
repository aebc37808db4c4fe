"""`--executor`, `--ray-address`, `--workers`: where a command's items run (one process, or Ray).

Every model-calling command (generate, solve, sample, eval, learn) takes the same three flags, and
they all end in one `Executor` handed to the one runner (`orca_math.engine.jobs.run_job`).
"""

from __future__ import annotations

import argparse
from typing import Any


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    """Add `--executor local|ray`, `--ray-address ADDR` and `--workers N` to a command."""
    from orca_math.cli.recipe_flags import add_recipe_flags
    from orca_math.recipes.common import ExecutorSection

    # Written once, as the recipe's executor fields (orca_math.recipes.common.ExecutorSection).
    add_recipe_flags(parser.add_argument_group("where items run"), ExecutorSection)


def executor_from_args(args: argparse.Namespace) -> Any:
    """The `Executor` the flags describe: None (the local default) or the registered one named by ``--executor``.

    ``--ray-address`` and ``--workers`` go to the executor's factory as ``address=`` and ``workers=``.
    """
    from orca_math.engine.executors.registry import make_executor
    from orca_math.errors import ConfigError

    executor = getattr(args, "executor", "local")
    settings = {key: value for key, value in (("address", getattr(args, "ray_address", None)),
                                              ("workers", getattr(args, "workers", None))) if value}
    if executor == "local":
        if settings:
            raise ConfigError("--ray-address and --workers need --executor ray.")
        return None
    try:
        return make_executor(executor, **settings)
    except TypeError as exc:  # a plug-in executor that takes neither setting
        if not settings:
            raise
        raise ConfigError(f"--executor {executor} does not take --ray-address or --workers ({exc}).") from None


__all__ = ["add_executor_options", "executor_from_args"]
