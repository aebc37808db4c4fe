"""Deciding whether two final answers are the same: numbers first, then times/ratios, then math_verify."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Literal

from orca_math.answers._mathverify import verify_with_math_verify
from orca_math.answers.extract import extract_final_answer
from orca_math.answers.normalize import ParsedNumber, normalise, read_number
from orca_math.answers.words import find_number_word_runs

Result = Literal["equal", "not_equal", "cant_tell"]


@dataclass(frozen=True, slots=True)
class Comparison:
    """A verdict on a predicted answer against a gold answer.

    Attributes:
        result: "equal", "not_equal", or "cant_tell" when no method could decide.
        reason: one sentence saying why.
        method: how it was decided: "numeric", "clock_time", "ratio", "text", "math_verify" or "none".
        gold_value: what the gold answer was read as (a Fraction for numbers, text otherwise), or None.
        predicted_value: what the predicted answer was read as, or None.
        rule: for `check_answer`, the extraction rule that found the predicted answer; None otherwise.
    """

    result: Result
    reason: str
    method: str
    gold_value: Fraction | str | None
    predicted_value: Fraction | str | None
    rule: str | None = None

    @property
    def is_equal(self) -> bool:
        """True only for "equal" ("cant_tell" is not a pass)."""
        return self.result == "equal"


def check_answer(gold: str, response: str) -> Comparison:
    """Extract the final answer from a whole `response` and compare it with `gold`.

    Args:
        gold: the reference answer ("72", "$18.50", "3/4"), not a whole solution.
        response: a model's free-form solution text.

    Returns:
        The `Comparison` of `compare_answers`, with `rule` set to the extraction rule used.
    """
    if not isinstance(response, str):
        raise TypeError(f"response must be a str, got {type(response).__name__}")
    extraction = extract_final_answer(response)
    if extraction.value is None:
        _check_gold(gold)
        return Comparison("cant_tell", "no final answer found in the response", "none", None, None, "none")
    return replace(compare_answers(gold, extraction.value), rule=extraction.rule)


def compare_answers(gold: str, predicted: str, *, rel_tol: float = 1e-4, abs_tol: float = 1e-6) -> Comparison:
    """Compare a predicted final answer with the gold one.

    Numbers are compared exactly, with allowances for rounding and percent/cents (see docs/answers.md);
    clock times and ratios ("3:30 p.m.", "2:3") by their parts; expressions and LaTeX that are not plain
    numbers by math_verify. Answers that are several values, or have no number, give "cant_tell"
    (two texts with no number that read the same are "equal").

    Args:
        gold: the reference answer.
        predicted: the answer to judge (already extracted; use `check_answer` for a whole response).
        rel_tol: relative tolerance, used only when both values look unrounded (>= 5 decimals, 1/3, 1e-7).
        abs_tol: absolute tolerance for the same case, for values near zero.

    Raises:
        TypeError: if an answer is not a string.
        ValueError: if `gold` is empty or a tolerance is negative.
    """
    _check_gold(gold)
    if not isinstance(predicted, str):
        raise TypeError(f"predicted must be a str, got {type(predicted).__name__}")
    if rel_tol < 0 or abs_tol < 0:
        raise ValueError(f"tolerances must be >= 0, got rel_tol={rel_tol}, abs_tol={abs_tol}")
    gold_number, predicted_number = read_number(gold), read_number(predicted)
    if gold_number is not None and predicted_number is not None:
        return _compare_numbers(gold_number, predicted_number, rel_tol, abs_tol)
    if not predicted.strip():
        return Comparison("cant_tell", "the predicted answer is empty", "none", _value(gold_number), None)
    gold_colon, predicted_colon = _read_colon_form(gold), _read_colon_form(predicted)
    if gold_colon or predicted_colon:
        return _compare_colon_forms(gold, predicted, gold_colon, predicted_colon)
    return _compare_unreadable(gold, predicted, gold_number, predicted_number)


def _check_gold(gold: object) -> None:
    if not isinstance(gold, str):
        raise TypeError(f"gold must be a str, got {type(gold).__name__}")
    if not gold.strip():
        raise ValueError("gold answer is empty; there is nothing to compare against")


def _value(number: ParsedNumber | None) -> Fraction | None:
    return None if number is None else number.value


# ---- numbers -------------------------------------------------------------------------------------------


def _compare_numbers(
    gold: ParsedNumber, predicted: ParsedNumber, rel_tol: float, abs_tol: float
) -> Comparison:
    readings = [(gold, predicted, "")]
    # "50%" may be meant as 50 or as 0.5, "50 cents" as 50 or as $0.50: try both when only one side says so.
    if gold.percent != predicted.percent:
        readings.append(_scaled_reading(gold, predicted, "percent", Fraction(1, 100), 2))
    if gold.cents != predicted.cents:
        readings.append(_scaled_reading(gold, predicted, "cents", Fraction(1, 100), 2))
    for gold_reading, predicted_reading, note in readings:
        why = _numbers_equal(gold_reading, predicted_reading, rel_tol, abs_tol)
        if why:
            return Comparison("equal", why + note, "numeric", gold_reading.value, predicted_reading.value)
    return Comparison(
        "not_equal",
        f"{_show(gold.value)} and {_show(predicted.value)} differ",
        "numeric",
        gold.value,
        predicted.value,
    )


def _scaled_reading(gold: ParsedNumber, predicted: ParsedNumber, flag: str, factor: Fraction, decimals: int):
    if getattr(gold, flag):
        return gold.scaled(factor, decimals), predicted, f" (gold {flag} read as a fraction of 1)"
    return gold, predicted.scaled(factor, decimals), f" (predicted {flag} read as a fraction of 1)"


def _numbers_equal(a: ParsedNumber, b: ParsedNumber, rel_tol: float, abs_tol: float) -> str | None:
    """Why `a` and `b` count as the same number, or None if they do not."""
    if a.value == b.value:
        return "exactly equal"
    short, long = sorted((a, b), key=lambda n: float("inf") if n.decimals is None else n.decimals)
    difference = abs(a.value - b.value)
    if short.decimals is not None:
        places = short.decimals
        long_places = float("inf") if long.decimals is None else long.decimals
        # 33.33 vs 33.333 or 100/3: the shorter was rounded from the longer. The longer must show at least
        # 3 decimals, so that 2.5 vs 2.46 (two rounded answers) stays different.
        if short.kind == "decimal" and places >= 1 and long_places >= max(places + 1, 3):
            if difference <= Fraction(1, 2 * 10**places):
                return f"{_show(long.value)} rounds to {_show(short.value)}"
        # 72 vs 71.99999: float noise in the last written digits of an unrounded decimal.
        if short.kind == "integer" and long.kind in ("decimal", "scientific") and long.decimals is not None:
            if long.decimals >= 5 and difference <= Fraction(10, 10**long.decimals):
                return f"{_show(long.value)} is {_show(short.value)} up to float noise"
    if _unrounded(a) and _unrounded(b):
        limit = max(Fraction(abs_tol), Fraction(rel_tol) * max(abs(a.value), abs(b.value)))
        if difference <= limit:
            return f"equal within rel_tol={rel_tol}, abs_tol={abs_tol}"
    return None


def _unrounded(number: ParsedNumber) -> bool:
    return number.kind == "scientific" or number.decimals is None or number.decimals >= 5


def _show(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value} (~{float(value):.6g})"


# ---- clock times and ratios ----------------------------------------------------------------------------

_COLON_FORM = re.compile(
    r"^(?:at\s+|about\s+)?(\d+)\s*:\s*(\d+)(?::(\d{2}))?\s*(?:([ap])\.?\s?m\b\.?)?(?P<rest>[^\d]*)$"
)


def _read_colon_form(text: str) -> tuple[int, int, int, str | None] | None:
    """(first, second, seconds, "a"/"p"/None) for "3:30 p.m.", "14:55", "2:3"; None for anything else."""
    match = _COLON_FORM.match(normalise(text.replace("\\colon", ":")))
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0), match.group(4)


def _is_clock(form: tuple[int, int, int, str | None], text: str) -> bool:
    first, second, _, meridiem = form
    return meridiem is not None or (re.search(r":\d{2}\b", text) is not None and second < 60 and first <= 24)


def _compare_colon_forms(gold: str, predicted: str, gold_form, predicted_form) -> Comparison:
    if gold_form is None or predicted_form is None:
        return Comparison(
            "cant_tell", "one answer is a time or ratio (a:b) and the other is not", "none", None, None
        )
    if _is_clock(gold_form, gold) and _is_clock(predicted_form, predicted):
        shown_gold, shown_predicted = _show_clock(gold_form), _show_clock(predicted_form)
        same = bool(_clock_minutes(gold_form) & _clock_minutes(predicted_form))
        reason = "the same clock time" if same else "different clock times"
        return Comparison("equal" if same else "not_equal", reason, "clock_time", shown_gold, shown_predicted)
    (a, b, _, _), (c, d, _, _) = gold_form, predicted_form
    same = a * d == b * c and (b != 0 or d != 0)
    reason = "equivalent ratios" if same else "different ratios"
    return Comparison("equal" if same else "not_equal", reason, "ratio", f"{a}:{b}", f"{c}:{d}")


def _clock_minutes(form: tuple[int, int, int, str | None]) -> set[int]:
    """Seconds after midnight that a clock reading may mean; "3:30" with no a.m./p.m. may mean two."""
    hour, minute, second, meridiem = form
    offset = minute * 60 + second
    if meridiem is not None:
        return {((hour % 12) + (12 if meridiem == "p" else 0)) * 3600 + offset}
    if hour == 0 or hour > 12:
        return {(hour % 24) * 3600 + offset}
    return {(hour % 12) * 3600 + offset, (hour % 12 + 12) * 3600 + offset}


def _show_clock(form: tuple[int, int, int, str | None]) -> str:
    first, second, seconds, meridiem = form
    shown = f"{first}:{second:02d}" + (f":{seconds:02d}" if seconds else "")
    return shown + (f" {meridiem}.m." if meridiem else "")


# ---- answers that are not one plain number ---------------------------------------------------------------

_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
_EXPRESSION = re.compile(r"[+*/^=√×÷\\]|\d\s+-\s+\d|\d[a-z](?![a-z])|\b(?:sqrt|pi|log|ln|sin|cos|tan)\b")


def _shape(text: str) -> str:
    """How a text that is not one number looks: "expression", "several", "no_number" or "other"."""
    normal = normalise(text)
    if "\\" in text or _EXPRESSION.search(normal):
        return "expression"
    numbers = len(_DIGITS.findall(normal)) + len(find_number_word_runs(normal))
    if numbers == 0:
        return "no_number"
    return "several" if numbers > 1 else "other"


def _compare_unreadable(gold: str, predicted: str, gold_number, predicted_number) -> Comparison:
    gold_shape = "number" if gold_number is not None else _shape(gold)
    predicted_shape = "number" if predicted_number is not None else _shape(predicted)
    values = (_value(gold_number), _value(predicted_number))
    if "no_number" in (gold_shape, predicted_shape):
        if gold_shape == predicted_shape == "no_number" and _plain_text(gold) == _plain_text(predicted):
            return Comparison("equal", "the same text (no number in either)", "text", gold, predicted)
        side = "gold" if gold_shape == "no_number" else "predicted"
        return Comparison(
            "cant_tell", f"the {side} answer has no number, and texts are not compared", "none", *values
        )
    if "several" in (gold_shape, predicted_shape):
        side = "gold" if gold_shape == "several" else "predicted"
        return Comparison("cant_tell", f"the {side} answer holds several values", "none", *values)
    outcome = verify_with_math_verify(gold, predicted)
    if outcome.equal is None:
        return Comparison("cant_tell", outcome.reason, "math_verify", outcome.gold, outcome.predicted)
    return Comparison(
        "equal" if outcome.equal else "not_equal",
        outcome.reason,
        "math_verify",
        outcome.gold,
        outcome.predicted,
    )


def _plain_text(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())
