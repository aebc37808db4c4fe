"""Deprecated: the dataset card moved to `orca_math.dataset_card` (docs/report.md named this path)."""

from orca_math._deprecated import moved
from orca_math.dataset_card import build_card, check_license, scrub_secrets, size_category, write_card

moved(__name__, "orca_math.dataset_card")

__all__ = ["build_card", "check_license", "scrub_secrets", "size_category", "write_card"]
