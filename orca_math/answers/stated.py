"""Strict readings of a stated final answer: the Teacher's rule, and the canonical text of a number.

`extract_final_answer` is lenient: it reads free-form replies. A Teacher's solution must instead *state*
its answer, so `find_stated_answer` accepts only
- a `Final answer: X` line (also "The final answer is X", markdown and case tolerated), or
- on the last non-empty line only, "The answer is X" / "So the answer is: X" / `#### X`,
and never guesses from the last number. Two different final answers are an error.

`canonical_number` and `stated_final_answer` give seed and benchmark loaders one text per number
("1,000" -> "1000", "5/2" -> "2.5").
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

FINAL_ANSWER_LINE = re.compile(
    r"^[\s>*_#]*(?:the\s+)?final\s+answer\s*(?:[:：]|is\b)\s*\**\s*(?P<value>.+?)\s*\**\s*$", re.IGNORECASE | re.MULTILINE
)
# Tolerated on the last non-empty line only: "The answer is 8", "So the answer is: 8", "#### 8".
CLOSING_ANSWER_LINE = re.compile(
    r"^\s*(?:(?:so|thus|therefore),?\s+)?(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*:?\s*(?P<value>.+?)\s*$"
    r"|^\s*####\s*(?P<hash>.+?)\s*$",
    re.IGNORECASE,
)


class ConflictingAnswersError(ValueError):
    """A solution states more than one different final answer.

    Attributes:
        values: the different answers, sorted.
    """

    def __init__(self, values: list[str]) -> None:
        self.values = values
        super().__init__(f"more than one final answer: {', '.join(values)}")


def find_final_answer_line(text: str) -> str | None:
    """The value on the last `Final answer: ...` line of a solution, or None.

    The value loses surrounding markdown `**` and one trailing period.
    """
    matches = list(FINAL_ANSWER_LINE.finditer(text))
    if not matches:
        return None
    return _clean(matches[-1].group("value")) or None


def find_stated_answer(text: str) -> str | None:
    """The final answer a solution states, by the Teacher's strict rule, or None when it states none.

    Every `Final answer: X` line counts; with none, the last non-empty line may be "The answer is X",
    "So the answer is: X" or `#### X`. No other line and no bare number is read.

    Args:
        text: a whole solution.

    Returns:
        The answer text, without a trailing period ("$18", "3/4", "12 apples"), or None.

    Raises:
        ConflictingAnswersError: the solution states two or more different final answers.
        TypeError: `text` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"find_stated_answer expects a str, got {type(text).__name__}")
    text = text.strip()
    if not text:
        return None
    values = {_clean(m.group("value")) for m in FINAL_ANSWER_LINE.finditer(text)} - {""}
    if not values:
        closing = CLOSING_ANSWER_LINE.match(text.splitlines()[-1])
        if closing:
            values = {_clean(closing.group("value") or closing.group("hash"))} - {""}
    if len(values) > 1:
        raise ConflictingAnswersError(sorted(values))
    return values.pop() if values else None


def _clean(value: str) -> str:
    return value.strip().rstrip(".").strip()


# ---- the canonical text of a number --------------------------------------------------------------------

_NUMBER = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?$")
_FRACTION = re.compile(r"^([-+]?)\(?\s*([-+]?\d+)\s*/\s*(\d+)\s*\)?$")
_HASHES = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)
_FINAL_LINE = re.compile(r"^\s*final answer\s*:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)


def canonical_number(value: Any) -> str | None:
    """The canonical text of a single number ("72", "0.5", "-3", "1/6"), or None if it isn't one.

    Accepts ints, floats, and text that is only a number: an optional sign, `$`, thousands commas and a
    decimal part ("$1,250.50"), or a fraction `a/b`, `-(1/3)`. A fraction becomes a decimal when that is
    exact ("5/2" -> "2.5"), else stays `a/b`, reduced. Text with anything else ("12 apples", "2:3") is
    not a number here: use `parse_number` to read numbers inside answers.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return _format_decimal(Decimal(repr(value)))
    text = str(value).strip().replace("$", "").strip()
    fraction = _FRACTION.match(text)
    if fraction:
        sign, numerator, denominator = fraction.groups()
        if int(denominator) == 0:
            return None
        return _format_fraction(Fraction(int(numerator), int(denominator)) * (-1 if sign == "-" else 1))
    if not text or not _NUMBER.match(text) or not any(ch.isdigit() for ch in text):
        return None
    try:
        return _format_decimal(Decimal(text.replace(",", "")))
    except InvalidOperation:
        return None


def stated_final_answer(text: str) -> str | None:
    """The answer after the last `####` or `Final answer:` line, else the text itself if it is a number.

    The answer is given in canonical form when it is a number ("#### 1,200" -> "1200"), as written
    otherwise ("Final answer: 12 apples" -> "12 apples"). `####` lines are looked at first.
    """
    for pattern in (_HASHES, _FINAL_LINE):
        matches = pattern.findall(text)
        if matches:
            value = matches[-1].strip().rstrip(".")
            return canonical_number(value) or value or None
    return canonical_number(text)


def _format_fraction(number: Fraction) -> str:
    denominator = number.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator == 1:  # terminates as a decimal
        return _format_decimal(Decimal(number.numerator) / Decimal(number.denominator))
    return f"{number.numerator}/{number.denominator}"


def _format_decimal(number: Decimal) -> str:
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")
