"""Deprecated: the run folder moved to `orca_math.engine.folder` (the whole folder layout lives there)."""

from orca_math._deprecated import moved
from orca_math.engine.folder import LOCK_FILE, NON_KEY_FIELDS, RunFolder, RunFolderBusyError, run_key

moved(__name__, "orca_math.engine.folder")

__all__ = ["LOCK_FILE", "NON_KEY_FIELDS", "RunFolder", "RunFolderBusyError", "run_key"]
