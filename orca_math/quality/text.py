"""Text normalisation, shingles and n-grams shared by dedup and decontamination.

Both checks compare problems after the same light normalisation, so that two problems that differ
only in case, spacing, punctuation, unicode forms or number formatting (``1,000`` vs ``1000``,
``5.00`` vs ``5``) count as the same text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence

# Thousands separators inside numbers: "1,250,000" -> "1250000".
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# Zero decimals after an integer: "5.00" -> "5" (generated text often writes integers as floats).
_ZERO_DECIMALS = re.compile(r"(?<=\d)\.0+(?!\d)")
# Any punctuation or symbol, except a decimal point between two digits ("3.5" keeps its point).
_PUNCTUATION = re.compile(r"(?!(?<=\d)\.(?=\d))[^\w\s]|_")
_WHITESPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Normalise a problem's text for comparison.

    Applies NFKC unicode normalisation, case folding, light number normalisation (thousands separators
    removed, ``.0``/``.00`` dropped after an integer), replaces punctuation and symbols by spaces (a
    decimal point between digits is kept) and collapses whitespace.

    Args:
        text: Any string.

    Returns:
        The normalised string; empty when the text holds no words.

    Raises:
        TypeError: If ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected the text as a str, got {type(text).__name__}")
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _THOUSANDS_COMMA.sub("", text)
    text = _ZERO_DECIMALS.sub("", text)
    text = _PUNCTUATION.sub(" ", text)
    return _WHITESPACE.sub(" ", text).strip()


def normalized_words(text: str) -> list[str]:
    """The words of ``normalize_text(text)``."""
    normalized = normalize_text(text)
    return normalized.split(" ") if normalized else []


def char_shingles(normalized: str, size: int) -> set[str]:
    """Distinct character shingles of ``size`` characters; a shorter non-empty text is one shingle."""
    if not normalized:
        return set()
    if len(normalized) <= size:
        return {normalized}
    return {normalized[i : i + size] for i in range(len(normalized) - size + 1)}


def word_shingles(words: Sequence[str], size: int) -> set[str]:
    """Distinct shingles of ``size`` consecutive words; fewer words than ``size`` give one shingle."""
    if not words:
        return set()
    if len(words) <= size:
        return {" ".join(words)}
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def word_ngrams(words: Sequence[str], n: int) -> Iterator[tuple[str, ...]]:
    """Consecutive ``n``-word tuples of ``words`` (none when there are fewer than ``n`` words).

    Tuples rather than joined strings: their hashes reuse each word's cached string hash, which makes
    hashing millions of n-grams about twice as fast.
    """
    return (tuple(words[i : i + n]) for i in range(len(words) - n + 1))

