"""Seed reading, benchmark loading and dataset writing.

* `read_seeds(source)` yields `Problem` records lazily from jsonl/json/csv/parquet files,
  `save_to_disk` folders, Hub datasets or in-memory rows; `count_seeds` and `source_fingerprint`
  support progress bars and run keys.
* `load_benchmark(name)` gives GSM8K, SVAMP, ASDiv, AddSub, MultiArith, SingleOp and SingleEq with the
  columns `id`, `benchmark`, `question`, `gold`; `load_custom` maps any other file's columns.
* `write_dataset(rows, out, formats=...)` writes save_to_disk folders, parquet and JSON Lines.

See docs/data.md.
"""

from orca_math.data.seeds import (
    SeedError,
    canonical_number,
    count_seeds,
    final_answer_of,
    iter_raw_rows,
    read_seeds,
    source_fingerprint,
)
from orca_math.data.writers import DataFileError, read_jsonl, write_dataset, write_jsonl

__all__ = [
    "DataFileError",
    "SeedError",
    "canonical_number",
    "count_seeds",
    "final_answer_of",
    "iter_raw_rows",
    "read_jsonl",
    "read_seeds",
    "source_fingerprint",
    "write_dataset",
    "write_jsonl",
]
