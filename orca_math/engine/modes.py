"""How calls are sent: online (each call as it comes) or batch (a provider's batch API, at its price).

Online is the default and needs nothing here. Batch mode changes how calls are sent, not what
they are: the same agents build the same messages and parse the replies, but each model call is
deferred (`CallDeferred`) until its reply comes back in a batch (`orca_math.engine.batch`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orca_math.errors import ConfigError

MODES = ("online", "batch")


def check_mode(mode: str) -> str:
    """`mode` when it is "online" or "batch", else a `ConfigError` naming both."""
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r}: use 'online' or 'batch'.")
    return mode


def batch_calls(out: str | Path, options: Any = None, *, wait: bool = True):
    """The batch-mode sender for a job whose output folder is `out` (see `orca_math.engine.batch`)."""
    from orca_math.engine.batch import BatchCalls, BatchOptions

    return BatchCalls(Path(out), options if options is not None else BatchOptions(), wait=wait)


def batch_price_multiplier(options: Any = None) -> float:
    """What batch calls cost relative to online ones (0.5 by default: the providers' batch discount)."""
    from orca_math.engine.batch import BatchOptions

    return (options if options is not None else BatchOptions()).price_multiplier


__all__ = ["MODES", "batch_calls", "batch_price_multiplier", "check_mode"]
