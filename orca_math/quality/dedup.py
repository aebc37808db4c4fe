"""Exact and near-duplicate removal of generated problems, streaming, first occurrence wins.

Exact duplicates are found on the normalised text (see `orca_math.quality.text.normalize_text`) with a
set of 16-byte digests. Near duplicates are found with MinHash LSH (datasketch) over character
shingles of the normalised text. In memory the index takes about 3.7 KB per kept problem (see
docs/quality.md); ``Deduplicator(on_disk=True)`` keeps it in a temporary sqlite file instead
(`orca_math.quality.dedup_index`), so memory stays flat however many problems go through.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from orca_math.errors import InputError
from orca_math.options import options_dataclass, options_from_mapping
from orca_math.quality.text import char_shingles, normalize_text, word_shingles
from orca_math.records import Drop

# datasketch's permutations depend only on the seed; a fixed one makes results the same in every run.
_MINHASH_SEED = 1
# LSH banding tuned for recall (false-positive weight 0.1, false-negative weight 0.9): every candidate
# is verified against the threshold with its estimated Jaccard, so a false candidate costs one vector
# comparison, while a missed pair is a duplicate left in the data. At 0.85 with 128 permutations this
# gives 11 bands of 11 rows: a pair at Jaccard 0.85 becomes a candidate 87% of the time, at 0.9 98%
# (datasketch's balanced default: 46% and 81%).
_LSH_WEIGHTS = (0.1, 0.9)


@options_dataclass
class DedupOptions:
    """Options of the dedup step: closed and frozen; a bad value or unknown key is a `ConfigError`.

    Attributes:
        exact: Drop rows whose normalised text equals an earlier row's.
        near: Drop rows whose estimated Jaccard similarity to an earlier kept row is at least
            ``threshold`` (MinHash LSH).
        threshold: Jaccard similarity, in (0, 1], from which two problems are near duplicates.
        num_perm: MinHash permutations (at least 16); more is more precise and slower.
        shingle: Shingle size, in characters (``shingle_unit="char"``) or words (``"word"``).
        shingle_unit: ``"char"`` (default): character shingles of the normalised text. A word changed
            in a 60-word problem keeps its Jaccard similarity around 0.9, so it is caught at 0.85; with
            5-word shingles the same edit falls to about 0.8. ``"word"`` is stricter about wording.
        field: The row field holding the problem text.
    """

    exact: bool = True
    near: bool = True
    threshold: Annotated[float, Field(gt=0, le=1)] = 0.85
    num_perm: Annotated[int, Field(ge=16)] = 128
    shingle: Annotated[int, Field(ge=1)] = 5
    shingle_unit: Literal["char", "word"] = "char"
    field: Annotated[str, Field(min_length=1)] = "question"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> DedupOptions:
        """Build options from a config mapping, rejecting unknown keys by name."""
        return options_from_mapping(cls, values, "dedup")


@dataclass(frozen=True)
class DedupResult:
    """What `Deduplicator.check` decided about one row.

    Attributes:
        duplicate_of: Id of the earlier kept row this one duplicates, or None when the row is kept.
        kind: ``"exact"``, ``"near"`` or None.
        similarity: Estimated Jaccard similarity for a near duplicate, 1.0 for an exact one.
    """

    duplicate_of: str | None = None
    kind: Literal["exact", "near"] | None = None
    similarity: float | None = None

    @property
    def is_duplicate(self) -> bool:
        return self.duplicate_of is not None


class Deduplicator:
    """Streaming deduplicator: the first occurrence of a problem is kept, later ones are duplicates.

    Only kept rows are indexed, so a duplicate always points at a row that survives.

    Example:
        >>> dedup = Deduplicator()
        >>> dedup.check("a", "Tom has 3 apples. How many apples does Tom have?").is_duplicate
        False
        >>> dedup.check("b", "tom has 3 apples -- how many apples does tom have").duplicate_of
        'a'

    Args:
        options: what counts as a duplicate (default `DedupOptions()`).
        on_disk: keep the index in a temporary sqlite file instead of memory: the same decisions,
            memory flat in the number of rows, about 2x slower (see docs/quality.md); `close()`
            removes the file.
    """

    def __init__(self, options: DedupOptions | None = None, *, on_disk: bool = False) -> None:
        if options is None:
            options = DedupOptions()
        if not isinstance(options, DedupOptions):
            raise TypeError(f"options must be a DedupOptions, got {type(options).__name__}")
        self.options = options
        self._seen_ids: set[str] = set()
        self._checked = 0
        self._exact: dict[bytes, str] = {}
        # Kept row id -> (insertion order, MinHash values); the order breaks ties deterministically.
        self._signatures: dict[str, tuple[int, np.ndarray]] = {}
        self._lsh = None
        if options.near:
            try:
                from datasketch import MinHash, MinHashLSH
            except ImportError as error:  # datasketch is the optional "quality" extra
                raise ImportError(
                    "near-duplicate detection needs datasketch: pip install 'orca-math[quality]'"
                ) from error
            self._minhash_class = MinHash
            self._permutations = MinHash(num_perm=options.num_perm, seed=_MINHASH_SEED).permutations
            try:
                self._lsh = MinHashLSH(
                    threshold=options.threshold, num_perm=options.num_perm, weights=_LSH_WEIGHTS
                )
            except ValueError as error:  # datasketch needs at least 2 bands of rows
                raise InputError(
                    f"threshold {options.threshold} is too high for MinHash LSH with num_perm={options.num_perm}"
                    f" ({error}); lower it (0.99 works with 128) or raise num_perm"
                ) from error
        # On disk, ids, digests, signatures and bands live in sqlite: nothing per row stays in memory.
        self._disk = None
        if on_disk:
            from orca_math.quality.dedup_index import DiskIndex

            self._disk = DiskIndex(self._lsh.hashranges if self._lsh is not None else [])
            self._lsh = None

    def __len__(self) -> int:
        """Number of rows checked so far."""
        return self._checked

    def close(self) -> None:
        """Remove the on-disk index (a no-op in memory); the deduplicator cannot check rows after."""
        if self._disk is not None:
            self._disk.close()

    def check(self, row_id: str, text: str) -> DedupResult:
        """Check one row against every earlier kept row, and index it when it is kept.

        Args:
            row_id: A unique id for the row; the same id twice is an error.
            text: The problem text.

        Returns:
            A `DedupResult`; ``duplicate_of`` is None when the row is kept.
        """
        if not isinstance(row_id, str) or not row_id:
            raise InputError(f"row_id must be a non-empty string, got {row_id!r}")
        if not isinstance(text, str):
            raise TypeError(f"text of row {row_id!r} must be a str, got {type(text).__name__}")
        disk = self._disk
        if (row_id in self._seen_ids) if disk is None else not disk.add_id(row_id):
            raise InputError(f"row id {row_id!r} was already checked; row ids must be unique")
        if disk is None:
            self._seen_ids.add(row_id)
        self._checked += 1
        normalized = normalize_text(text)

        digest = hashlib.blake2b(normalized.encode("utf-8"), digest_size=16).digest()
        if self.options.exact:
            first = self._exact.get(digest) if disk is None else disk.exact(digest)
            if first is not None:
                return DedupResult(duplicate_of=first, kind="exact", similarity=1.0)

        if self.options.near and normalized:
            signature = self._signature(normalized)
            match = self._best_near_match(signature)
            if match is not None:
                return DedupResult(duplicate_of=match[0], kind="near", similarity=match[1])
            if disk is not None:
                disk.add(row_id, signature.hashvalues)
            else:
                self._lsh.insert(row_id, signature, check_duplication=False)
                self._signatures[row_id] = (len(self._signatures), signature.hashvalues)

        if self.options.exact:
            if disk is None:
                self._exact[digest] = row_id
            else:
                disk.add_exact(digest, row_id)
        return DedupResult()

    def _signature(self, normalized: str):
        if self.options.shingle_unit == "char":
            shingles = char_shingles(normalized, self.options.shingle)
        else:
            shingles = word_shingles(normalized.split(" "), self.options.shingle)
        # crc32 is deterministic across processes (unlike hash()) and ~2x faster than datasketch's sha1;
        # datasketch mixes the 32-bit values before permuting them.
        signature = self._minhash_class(
            num_perm=self.options.num_perm, permutations=self._permutations, scheme="affine32",
            hashfunc=zlib.crc32,
        )
        signature.update_batch([shingle.encode("utf-8") for shingle in shingles])
        return signature

    def _best_near_match(self, signature) -> tuple[str, float] | None:
        best: tuple[str, float] | None = None
        # LSH returns candidates in no fixed order; visiting them in insertion order makes ties go to the
        # earliest kept row, so the outcome is deterministic.
        if self._disk is not None:
            candidates = self._disk.candidates(signature.hashvalues)
        else:
            keys = sorted(self._lsh.query(signature), key=lambda key: self._signatures[key][0])
            candidates = [(key, self._signatures[key][1]) for key in keys]
        for candidate, values in candidates:
            similarity = float(np.mean(values == signature.hashvalues))
            if similarity >= self.options.threshold and (best is None or similarity > best[1]):
                best = (candidate, similarity)
        return best


def dedup_rows(
    rows: Iterable[Mapping[str, Any]], options: DedupOptions | None = None, id_field: str | None = "id"
) -> tuple[list[dict[str, Any]], list[Drop]]:
    """Remove exact and near duplicates from rows, keeping the first occurrence of each problem.

    Args:
        rows: Rows (dicts) holding ``options.field`` and ``id_field``.
        options: Dedup options; defaults to `DedupOptions()`.
        id_field: The field holding each row's unique id, or None to use the row's position ("0", "1"…).

    Returns:
        ``(kept, drops)``: the kept rows in input order, and one `Drop` per removed row with
        ``stage="dedup"``, ``reason`` ``"exact_duplicate"`` or ``"near_duplicate"`` and ``duplicate_of``
        the id of the kept row.
    """
    deduplicator = Deduplicator(options)
    field = deduplicator.options.field
    kept: list[dict[str, Any]] = []
    drops: list[Drop] = []
    for position, row in enumerate(rows):
        if field not in row:
            raise InputError(f"row {position} has no {field!r} field (fields: {sorted(row)})")
        if id_field is None:
            row_id = str(position)
        elif id_field in row:
            row_id = str(row[id_field])
        else:
            raise InputError(f"row {position} has no {id_field!r} id field; pass id_field=None to use positions")
        result = deduplicator.check(row_id, row[field])
        if not result.is_duplicate:
            kept.append(row)
            continue
        exact = result.kind == "exact"
        drops.append(
            Drop(
                id=row_id,
                stage="dedup",
                reason="exact_duplicate" if exact else "near_duplicate",
                detail="identical after normalisation" if exact else f"jaccard≈{result.similarity:.2f}",
                duplicate_of=result.duplicate_of,
                row=dict(row),
            )
        )
    return kept, drops
