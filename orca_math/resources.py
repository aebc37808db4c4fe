"""Where the shipped agent cards and prompt templates are.

In a wheel they live in `orca_math/_resources/{agents,prompts}`; in a source checkout (editable
install) they are the repo's top-level `agents/` and `prompts/` folders.
"""

from __future__ import annotations

from pathlib import Path

from orca_math.errors import ConfigError, MissingFileError

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(kind: str) -> Path:
    """The folder holding the shipped `agents` cards or `prompts` templates."""
    if kind not in ("agents", "prompts"):
        raise ConfigError(f"unknown resource kind {kind!r}; expected 'agents' or 'prompts'")
    for candidate in (_PACKAGE_DIR / "_resources" / kind, _PACKAGE_DIR.parent / kind):
        if candidate.is_dir():
            return candidate
    raise MissingFileError(
        f"orca-math's {kind}/ folder is missing from the installation; reinstall the package"
    )
