"""Quality steps for generated problems: dedup and decontamination against benchmark test sets.

- `dedup_rows` / `Deduplicator`: exact duplicates on normalised text, near duplicates with MinHash LSH.
- `decontaminate_rows` / `Decontaminator` / `decontaminate_dataset`: 13-gram overlap with GSM8K, SVAMP,
  ASDiv and the MAWPS sets (or any reference texts).

See docs/quality.md.
"""

from orca_math.quality.decontaminate import (
    DEFAULT_SETS,
    ContaminationResult,
    DecontaminationOptions,
    DecontaminationReport,
    Decontaminator,
    decontaminate_dataset,
    decontaminate_rows,
    load_reference_questions,
)
from orca_math.quality.dedup import Deduplicator, DedupOptions, DedupResult, dedup_rows
from orca_math.quality.text import normalize_text

__all__ = [
    "DEFAULT_SETS",
    "ContaminationResult",
    "DecontaminationOptions",
    "DecontaminationReport",
    "Decontaminator",
    "DedupOptions",
    "DedupResult",
    "Deduplicator",
    "decontaminate_dataset",
    "decontaminate_rows",
    "dedup_rows",
    "load_reference_questions",
    "normalize_text",
]
