"""`--batch`, `--no-wait` and the batch-mode settings: send a command's model calls through a batch API.

Batch mode changes how calls are sent, not what they are (see docs/batch.md): the same agents build
the same requests, priced at the provider's batch price. `--no-wait` submits what it can and exits
with a line saying when to rerun; rerunning the same command picks the batches up where they are,
and `orca-math status OUT` shows them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_batch_options(parser: argparse.ArgumentParser) -> None:
    """Add `--batch`, `--no-wait` and the `--batch-*` settings to a command."""
    from orca_math.cli.recipe_flags import add_recipe_flags
    from orca_math.recipes.common import BatchSection

    group = parser.add_argument_group("batch mode")
    # The settings are written once, as the recipe's batch fields (orca_math.recipes.common.BatchSection);
    # --no-wait says how to run, not what, so it is no recipe field.
    add_recipe_flags(group, BatchSection, only=("enabled",))
    group.add_argument("--no-wait", action="store_true",
                       help="with --batch: submit what can be submitted and exit; rerun the command to continue")
    add_recipe_flags(group, BatchSection, only=[name for name in BatchSection.model_fields if name != "enabled"])


def mode_from_args(args: argparse.Namespace) -> str:
    """"batch" with `--batch`, else "online" (and `--no-wait` without `--batch` is refused)."""
    from orca_math.errors import ConfigError

    if getattr(args, "no_wait", False) and not getattr(args, "batch", False):
        raise ConfigError("--no-wait needs --batch.")
    return "batch" if getattr(args, "batch", False) else "online"


def batch_options_from_args(args: argparse.Namespace) -> Any:
    """The `BatchOptions` the flags ask for (None without `--batch`); a bad value is one `ConfigError` sentence."""
    if mode_from_args(args) == "online":
        return None
    from orca_math.engine.batch import BatchOptions

    flags = {"backend": "batch_backend", "max_open": "batch_max_open", "max_requests": "batch_max_requests",
             "max_tokens": "batch_max_tokens", "poll_seconds": "batch_poll_seconds",
             "price_multiplier": "batch_price_multiplier", "max_attempts": "batch_max_attempts",
             "vllm_model": "batch_vllm_model"}
    values = {name: getattr(args, flag) for name, flag in flags.items() if getattr(args, flag, None) is not None}
    if "poll_seconds" in values:
        values["max_poll_seconds"] = max(values["poll_seconds"], min(600.0, values["poll_seconds"] * 10))
    return BatchOptions(**values)


def batch_calls_from_args(args: argparse.Namespace, out: str | Path) -> Any:
    """The batch-mode sender for a run whose output folder is `out`, or None when calls go online."""
    options = batch_options_from_args(args)
    if options is None:
        return None
    from orca_math.engine.modes import batch_calls

    return batch_calls(out, options, wait=not args.no_wait)


__all__ = ["add_batch_options", "batch_calls_from_args", "batch_options_from_args", "mode_from_args"]
