"""Old import paths kept for one release: a module that moved warns once and re-exports its names."""

from __future__ import annotations

import warnings


def moved(old: str, new: str) -> None:
    """Warn that module `old` moved to `new` (call it at the top of the old module)."""
    warnings.warn(f"{old} moved to {new}; the old path goes in the next release", DeprecationWarning, stacklevel=3)
