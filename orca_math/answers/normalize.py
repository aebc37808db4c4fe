"""Reading one number out of a short answer string: normalisation, then a single-number parse.

`read_number` keeps what the comparison needs beyond the value (how many decimals were written, percent,
cents); `parse_number` is the public face and returns only the value.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache
from typing import Literal

from orca_math.answers.words import SCALES, find_number_word_runs, words_to_number

NumberKind = Literal["integer", "decimal", "fraction", "scientific"]


@dataclass(frozen=True, slots=True)
class ParsedNumber:
    """A number read from an answer, with what was written about its precision.

    Attributes:
        value: the exact value (a percent is kept as written: "50%" has value 50).
        kind: how it was written.
        decimals: decimals written (or of its exact expansion); None for a fraction that never terminates.
        percent: True when followed by "%", "percent" or "per cent".
        cents: True when the unit is cents, so the comparison may also read it as dollars.
        scale: the multiplier a scale word applied ("7 dozen": 12, "$4 million": 1000000, "45k": 1000),
            or 1. The value includes it (84); the comparison may also read the number as a count of
            that unit (7 dozen, 4 million).
    """

    value: Fraction
    kind: NumberKind
    decimals: int | None
    percent: bool = False
    cents: bool = False
    scale: int = 1

    def scaled(self, factor: Fraction, extra_decimals: int | None) -> ParsedNumber:
        """The same number times `factor` (for %, cents, dozens); the kind is kept, so "50%" stays unrounded.

        `extra_decimals` None means: the decimals of the exact new value.
        """
        value = self.value * factor
        if extra_decimals is None:
            decimals = decimals_of(value)
        else:
            decimals = None if self.decimals is None else self.decimals + extra_decimals
        return replace(self, value=value, decimals=decimals, percent=False, cents=False, scale=1)


_FAST_INTEGER = re.compile(r"-?\d+")
_FAST_DECIMAL = re.compile(r"-?\d+\.\d+")

_FRAC_BODY = r"\s*\{\s*(-?[\d.,]+)\s*\}\s*\{\s*(-?[\d.,]+)\s*\}"
_LATEX_FRAC = re.compile(r"\\[dt]?frac" + _FRAC_BODY + r"|\\[dt]?frac\s*(\d)\s*(\d)")
_LATEX_WRAPPERS = re.compile(
    r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname|boxed|fbox)\s*\{([^{}]*)\}"
)
_LATEX_SIMPLE = [
    (re.compile(r"\{,\}"), ","),
    (re.compile(r"\\[$%]"), lambda m: m.group()[1]),
    (re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ"), " degrees"),
    (re.compile(r"\\(?:left|right|displaystyle|!)"), ""),
    (re.compile(r"\\[,;: ]|~"), " "),
    (re.compile(r"\\(?:approx|sim|simeq)"), "="),
    (re.compile(r"\\[()\[\]]"), " "),
]
_UNICODE = str.maketrans(
    {
        "\u2212": "-",
        "\u2013": "-",
        "\u2044": "/",
        "\u2248": "=",
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\u2007": " ",
        "\u00d7": "*",
        "\u00f7": "/",
        "\u00b0": " degrees ",
    }
)
_VULGAR = {c: f" {Fraction(unicodedata.numeric(c)).limit_denominator(10)}" for c in "¼½¾⅐⅑⅒⅓⅔⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞"}
_CURRENCY_SYMBOLS = re.compile(r"[$€£¥₹¢]")
_MARKDOWN = re.compile(r"\*\*|__|`")
_SPACES = re.compile(r"\s+")

# One number as written with digits. Alternatives are ordered so the longest reading wins.
NUMBER_CORE = re.compile(
    r"(?<![\w.])(?P<sign>-\s?)?(?:"
    r"(?P<whole>\d+)\s+(?P<mnum>\d+)\s*/\s*(?P<mden>\d+)"
    r"|(?P<num>\d+(?:\.\d+)?)\s*/\s*(?P<den>\d+(?:\.\d+)?)"
    r"|(?P<sci>(?:\d+(?:\.\d*)?|\.\d+)e[-+]?\d+)"
    r"|(?P<grouped>\d{1,3}(?:,\d{3})+(?:\.\d+)?)"
    r"|(?P<spaced>\d{1,3}(?: \d{3})+(?:\.\d+)?)(?![\d/])"
    r"|(?P<plain>\d+(?:\.\d+)?|\.\d+)"
    r")(?!\d)"
)
_OPERATORS = re.compile(r"[*^+=<>|\\×÷]|\b(?:sqrt|log|ln|sin|cos|tan|exp|pi)\b")
# A day of a month is a date, not a quantity: "February 3rd".
_MONTH_BEFORE = re.compile(r"\b(?:jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b\.?\s*$")
_MONTH_AFTER = re.compile(
    r"^\s*(?:st|nd|rd|th)?\s*(?:of\s+)?"
    r"(?:january|february|march|april|june|july|august|september|october|november|december)\b"
)
_SCALE_WORDS = {"dozen": 12, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_SCALE_AFTER = re.compile(r"\s*(thousand|million|billion|trillion|dozen|hundred)\b|(k)\b")
_PERCENT_AFTER = re.compile(r"\s*(?:%|percent\b|per cent\b|pct\b)")
_NEGATIVE_BEFORE = re.compile(r"(?:\bminus|\bnegative|-\s*\()\s*$")
_CENTS = re.compile(r"\bcents?\b|¢")
_MAX_EXPONENT = 100
_TRAILING = " \t\n.,;:!?'\""


def normalise(text: str) -> str:
    """Lower-cased answer text with LaTeX number markup, currency symbols and markdown taken out.

    `\\frac{3}{4}` becomes `3/4`, `\\text{ apples}` becomes ` apples`, `\\$`, `$`, `€`, `£` are dropped,
    unicode minus and thin spaces become ASCII, `½` becomes ` 1/2`, and what follows the last `=` is kept.
    LaTeX this does not know (`\\sqrt`, `\\pi`, ...) stays, so the caller can hand it to math_verify.
    """
    text = text.translate(_UNICODE)
    if "\\" in text or "{" in text:
        text = _LATEX_FRAC.sub(_frac_to_slash, text)
        for _ in range(3):  # wrappers may nest: \boxed{\text{12}}
            text = _LATEX_WRAPPERS.sub(r" \1 ", text)
        for pattern, replacement in _LATEX_SIMPLE:
            text = pattern.sub(replacement, text)
    for char, fraction in _VULGAR.items():
        if char in text:
            text = text.replace(char, fraction)
    text = _MARKDOWN.sub("", text)
    text = _CURRENCY_SYMBOLS.sub(" ", text)
    if "=" in text:
        text = text.rsplit("=", 1)[1]
    text = _SPACES.sub(" ", text.lower()).rstrip(_TRAILING)
    # Leading punctuation goes too, but not the point of ".5".
    return text.lstrip(_TRAILING.replace(".", "")).strip()


def _frac_to_slash(match: re.Match[str]) -> str:
    numerator = match.group(1) or match.group(3)
    denominator = match.group(2) or match.group(4)
    before = match.string[match.start() - 1] if match.start() > 0 else ""
    # "2\frac{1}{2}" is a mixed number: keep a space so it reads as "2 1/2".
    return f"{' ' if before.isdigit() else ''}{numerator}/{denominator}"


def parse_number(text: str) -> Fraction | float | None:
    """The single number an answer string states, or None.

    Reads "72", "-5", "−5", "minus 5", "1,234,567", "1 234", "$12.50", "\\$12", "€3", "12 apples", "5 km/h",
    "50%" (as 50), "3/4", "1 1/2", "\\frac{3}{4}", "\\dfrac{3}{4}", "1.2e3", "twelve", "forty-two",
    "one hundred and five", "a dozen", "1.5 million", "approximately 12.", "x = 5".
    Returns None for text with no number, with several numbers ("3 apples and 4 oranges", "1,5"),
    for times and ratios ("3:30", "2:3"), and for expressions ("2x", "\\sqrt{2}", "3 + 4").

    Args:
        text: a short answer, not a whole solution (use `extract_final_answer` first).

    Returns:
        A `Fraction` holding the exact value as written (this implementation never returns a float;
        the float arm of the type is kept for callers that pass values through).

    Raises:
        TypeError: if `text` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_number expects a str, got {type(text).__name__}")
    parsed = read_number(text)
    return None if parsed is None else parsed.value


@lru_cache(maxsize=16384)
def read_number(text: str) -> ParsedNumber | None:
    """Like `parse_number` but keeps precision, percent and cents; cached, since golds repeat."""
    stripped = text.strip()
    # Fast path: most answers are bare integers or decimals.
    if _FAST_INTEGER.fullmatch(stripped):
        return ParsedNumber(Fraction(int(stripped)), "integer", 0)
    if _FAST_DECIMAL.fullmatch(stripped):
        return ParsedNumber(Fraction(stripped), "decimal", len(stripped) - stripped.index(".") - 1)
    return _read_normalised(normalise(stripped), cents_hint=bool(_CENTS.search(stripped)))


def _read_normalised(text: str, cents_hint: bool) -> ParsedNumber | None:
    if not text or "\\" in text:
        return None
    cores = list(NUMBER_CORE.finditer(text))
    if not cores:
        return _read_words(text, cents_hint)
    if len(cores) > 1:
        return None
    core = cores[0]
    before, after = text[: core.start()], text[core.end() :]
    if any(ch.isdigit() for ch in before + after) or _OPERATORS.search(before) or _OPERATORS.search(after):
        return None
    if _MONTH_BEFORE.search(before) or _MONTH_AFTER.search(after):
        return None
    number = _core_value(core)
    if number is None:
        return None
    scale = _SCALE_AFTER.match(after)
    # "45k" (a glued "k" means thousand) is checked before the suffix test, which rejects one-letter suffixes.
    if not scale and not _plausible_suffix(after):
        return None
    if scale:
        word = scale.group(1) or "thousand"
        factor = SCALES.get(word) or (12 if word == "dozen" else 100)
        value = number.value * factor
        number = ParsedNumber(
            value, "integer" if value.denominator == 1 else number.kind, decimals_of(value)
        )
        after = after[scale.end() :]
    percent = bool(_PERCENT_AFTER.match(after))
    negative = bool(_NEGATIVE_BEFORE.search(before))
    value = -number.value if negative else number.value
    multiplier = int(factor) if scale else 1
    return replace(number, value=value, percent=percent, cents=cents_hint and not percent, scale=multiplier)


def _plausible_suffix(after: str) -> bool:
    """False when the number is glued to something that makes it an expression, a time or a ratio."""
    if not after or after[0] in " %)(,.;!?'\"-":
        return True
    letters = re.match(r"[a-z]+", after)
    # "5km", "3rd" and the one-letter units "500g", "20m", "30s" are fine; "5x" and "2pi" are expressions;
    # "3:" and "5/" lead to another form.
    if letters and letters.group() in _UNIT_LETTERS:
        return True
    return bool(letters) and len(letters.group()) >= 2 and letters.group() != "pi"


_UNIT_LETTERS = frozenset("g m s h l".split())


def _core_value(core: re.Match[str]) -> ParsedNumber | None:
    sign = -1 if core.group("sign") else 1
    if core.group("whole") is not None:
        denominator = int(core.group("mden"))
        if denominator == 0:
            return None
        value = int(core.group("whole")) + Fraction(int(core.group("mnum")), denominator)
        return ParsedNumber(sign * value, "fraction", decimals_of(value))
    if core.group("num") is not None:
        denominator = Fraction(core.group("den"))
        if denominator == 0:
            return None
        value = Fraction(core.group("num")) / denominator
        return ParsedNumber(sign * value, "fraction", decimals_of(value))
    if core.group("sci") is not None:
        literal = core.group("sci")
        mantissa, exponent = literal.split("e")
        written = len(mantissa.split(".")[1]) if "." in mantissa else 0
        if abs(int(exponent)) > _MAX_EXPONENT:
            return None  # "1e999999999" would build a gigantic exact integer
        value = Fraction(literal)
        return ParsedNumber(sign * value, "scientific", max(0, written - int(exponent)))
    literal = (core.group("grouped") or core.group("spaced") or core.group("plain")).replace(",", "")
    literal = literal.replace(" ", "")
    if "." in literal:
        return ParsedNumber(sign * Fraction(literal), "decimal", len(literal) - literal.index(".") - 1)
    return ParsedNumber(Fraction(sign * int(literal)), "integer", 0)


def _read_words(text: str, cents_hint: bool) -> ParsedNumber | None:
    runs = find_number_word_runs(text)
    if len(runs) != 1:
        return None
    start, end = runs[0]
    before, after = text[:start], text[end:]
    if _OPERATORS.search(before) or _OPERATORS.search(after):
        return None
    value = words_to_number(text[start:end])
    if value is None:
        return None
    if _NEGATIVE_BEFORE.search(before):
        value = -value
    percent = bool(_PERCENT_AFTER.match(after))
    kind: NumberKind = "integer" if value.denominator == 1 else "fraction"
    run = text[start:end]
    # Only a run that ends in its scale word counts in that unit: "two dozen", "four million".
    multiplier = next((size for word, size in _SCALE_WORDS.items() if run.endswith(word)), 1)
    return ParsedNumber(
        value, kind, decimals_of(value), percent=percent, cents=cents_hint and not percent, scale=multiplier
    )


def decimals_of(value: Fraction) -> int | None:
    """Decimals of the exact expansion of `value`, or None if it never terminates (1/3)."""
    denominator = value.denominator
    twos = fives = 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    return max(twos, fives) if denominator == 1 else None
