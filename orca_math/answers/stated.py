"""Strict readings of a stated final answer: the Teacher's rule, and the canonical text of a number.

`extract_final_answer` is lenient: it reads free-form replies. A Teacher's solution must instead *state*
its answer, so `find_stated_answer` accepts only
- a `Final answer: X` line (also "The final answer is X", markdown and case tolerated), or
- on the last non-empty line only, "The answer is X" / "So the answer is: X" / `#### X`,
and never guesses from the last number. Two different final answers are an error.

`strict_final_answer` goes one step further for the Teacher and the Student: the stated answer must be
one value (a number, a fraction, a percentage or a money amount, with at most a unit after it), and it
is given in canonical form ("$1,250.50" -> "1250.5", "3/4", "12.5%"). Anything else ("five apples",
"x + 3", "5 or 6") raises `FinalAnswerError` with the reason, which the agent sends back to the model.

`canonical_number` and `stated_final_answer` give seed and benchmark loaders one text per number
("1,000" -> "1000", "5/2" -> "2.5").
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

FINAL_ANSWER_LINE = re.compile(
    r"^[\s>*_#]*(?:the\s+)?final\s+answer\s*(?:[:：]|is\b\s*:?)\s*\**\s*(?P<value>.+?)\s*\**\s*$", re.IGNORECASE | re.MULTILINE
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


# ---- the strict final answer: one value, in canonical form -------------------------------------------

#: Final answers a solver may give instead of a value, when the problem cannot be answered as stated.
NO_ANSWER_VALUES = ("unsolvable", "ambiguous")


class FinalAnswerError(ValueError):
    """A solution's final answer is missing, repeated with different values, or not one value.

    Attributes:
        reason: one sentence, fit to be sent back to the model ("the final answer 'x + 3' is not ...").
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_WRAPPERS = (
    re.compile(r"^\\boxed\{(.*)\}$"),
    re.compile(r"^\$\$(.*)\$\$$"),
    re.compile(r"^\$(.*)\$$"),  # inline math "$5$"; a money amount "$5" has no closing sign
    re.compile(r"^\\\((.*)\\\)$"),
    re.compile(r"^\\\[(.*)\\\]$"),
    re.compile(r"^\*\*(.*)\*\*$"),
    re.compile(r"^`(.*)`$"),
)
_LATEX_FRACTION = re.compile(r"\\[dt]?frac\{\s*(\d+)\s*\}\{\s*(\d+)\s*\}")
# One value: a sign, a currency sign, a number (thousands commas, decimals), a fraction or a mixed number,
# then a percent sign, then at most three words of unit ("apples", "dollars per hour", "cm").
_VALUE = re.compile(
    r"^(?:[a-z]\s*=\s*)?"  # "x = 5": the variable a solution named
    r"(?P<sign>[-+−])?\s*(?P<currency>[$€£¥])?\s*(?P<sign2>[-−])?\s*"
    r"(?:(?P<whole>\d+)\s+(?P<num>\d+)\s*/\s*(?P<den>\d+)"  # mixed: 1 1/2
    r"|(?P<fnum>\d+)\s*/\s*(?P<fden>\d+)"  # fraction: 3/4
    r"|(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+))"
    r"(?P<percent>\s*%|\s+percent\b|\s+per\s*cent\b)?"
    r"(?P<unit>(?:\s+[a-z][a-z'’.²³/-]*|\s*(?:°[cf]?|[²³]))?(?:\s+[a-z][a-z'’.²³/-]*){0,2})$",
    re.IGNORECASE,
)
# Words that turn a unit into an expression, a second value or a hedge: "5 or 6", "x plus 3", "about 5".
_NOT_UNITS = frozenset(
    "or and to plus minus times divided over than approximately about around roughly nearly almost "
    "zero one two three four five six seven eight nine ten eleven twelve hundred thousand million half".split()
)


def canonical_value(value: str) -> str | None:
    """The canonical text of one stated value, or None when `value` is not one.

    A number, a fraction, a mixed number, a percentage or a money amount, optionally followed by a unit
    of at most three words: "5", "$1,250.50" -> "1250.5", "3/4", "6/8" -> "3/4", "1 1/2" -> "3/2",
    "12.5%" -> "12.5%", "12 apples" -> "12", "x = 5" -> "5". Values in words, expressions, ranges and
    hedges are not values: "five apples", "x + 3", "5 or 6", "5-6", "about 5".
    """
    text = value.strip().rstrip(".").strip()
    for _ in range(3):  # \boxed{**5**}: unwrap a few layers
        for wrapper in _WRAPPERS:
            match = wrapper.match(text)
            if match:
                text = match.group(1).strip().rstrip(".").strip()
    text = _LATEX_FRACTION.sub(r"\1/\2", text).replace("\\%", "%").replace("\\$", "$").strip()
    match = _VALUE.match(text)
    if not match:
        return None
    unit_words = match.group("unit").lower().replace("’", "'").split()
    if any(word.strip(".'") in _NOT_UNITS for word in unit_words):
        return None
    negative = (match.group("sign") or match.group("sign2") or "") in ("-", "−")
    if match.group("whole") is not None:
        if int(match.group("den")) == 0:
            return None
        canonical = _reduced(int(match.group("whole")) + Fraction(int(match.group("num")), int(match.group("den"))))
    elif match.group("fnum") is not None:
        if int(match.group("fden")) == 0:
            return None
        canonical = _reduced(Fraction(int(match.group("fnum")), int(match.group("fden"))))
    else:
        canonical = _format_decimal(Decimal(match.group("number").replace(",", "")))
    if negative and canonical != "0":
        canonical = "-" + canonical
    return canonical + "%" if match.group("percent") else canonical


def _reduced(number: Fraction) -> str:
    """A stated fraction stays a fraction, reduced ("6/8" -> "3/4", "1 1/2" -> "3/2"), or a whole number."""
    return str(number.numerator) if number.denominator == 1 else f"{number.numerator}/{number.denominator}"


def strict_final_answer(text: str, *, allow_no_answer: bool = True) -> str:
    """The final answer a solution states, as one canonical value (the Teacher's and Student's rule).

    The answer is read by `find_stated_answer` and must be one value (see `canonical_value`). With
    `allow_no_answer`, a solver may instead state that the problem cannot be answered:
    "Final answer: unsolvable" or "Final answer: ambiguous" (returned as that word).

    Raises:
        FinalAnswerError: no stated answer, two different ones, or an answer that is not one value;
            its `reason` says which, in words a model can act on.
        TypeError: `text` is not a string.
    """
    try:
        stated = find_stated_answer(text)
    except ConflictingAnswersError as exc:
        raise FinalAnswerError(f"{exc}; state exactly one final answer") from None
    if stated is None:
        raise FinalAnswerError("no 'Final answer: <value>' line at the end")
    word = stated.strip("*_` .").lower()
    if allow_no_answer and word in NO_ANSWER_VALUES:
        return word
    canonical = canonical_value(stated)
    if canonical is None:
        raise FinalAnswerError(f"the final answer {stated!r} is not a single value; write one number, fraction, "
                               "percentage or money amount in digits, such as 'Final answer: 42'")
    return canonical


def with_final_answer_line(text: str, value: str) -> str:
    """`text` with its stated final answer line(s) replaced by one closing line `Final answer: <value>`.

    The line(s) `find_stated_answer` read are removed ("Final answer: ..." lines, or else a closing
    "The answer is ..." / "#### ..." line) and the canonical line is appended, so every kept solution
    ends the same machine-readable way.
    """
    lines = text.strip().splitlines()
    kept = [line for line in lines if not FINAL_ANSWER_LINE.match(line)]
    if len(kept) == len(lines):
        while kept and not kept[-1].strip():
            kept.pop()
        if kept and CLOSING_ANSWER_LINE.match(kept[-1]):
            kept.pop()
    body = "\n".join(kept).rstrip()
    return f"{body}\n\nFinal answer: {value}" if body else f"Final answer: {value}"


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
