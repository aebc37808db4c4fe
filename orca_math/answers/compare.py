"""Deciding whether two final answers are the same: numbers first, then times/ratios, then math_verify."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from orca_math.answers._mathverify import verify_with_math_verify
from orca_math.answers.normalize import ParsedNumber, decimals_of, normalise, read_number
from orca_math.answers.units import conversions, read_compound, unit_of
from orca_math.answers.words import find_number_word_runs

Result = Literal["equal", "not_equal", "cant_tell"]
Rounding = Literal["both", "reply", "none"]
ROUNDING_MODES: tuple[str, ...] = ("both", "reply", "none")


@dataclass(frozen=True, slots=True)
class Comparison:
    """A verdict on a predicted answer against a gold answer.

    Attributes:
        result: "equal", "not_equal", or "cant_tell" when no method could decide.
        reason: one sentence saying why.
        method: how it was decided: "numeric", "clock_time", "ratio", "text", "math_verify" or "none";
            "unit" for a "cant_tell" where the numbers match only after a unit conversion.
        gold_value: what the gold answer was read as (a Fraction for numbers, text otherwise), or None.
        predicted_value: what the predicted answer was read as, or None.
        rule: for `check_answer`, the extraction rule that found the predicted answer; None otherwise.
        confidence: for `check_answer`, how sure the extraction was: "marker" (an explicit answer
            marker), "sole" (no marker; the closing statement mentions one quantity), "guess" (chosen
            among several, or none of several matched) or "none" (nothing found); None for
            `compare_answers`, which extracts nothing.
    """

    result: Result
    reason: str
    method: str
    gold_value: Fraction | str | None
    predicted_value: Fraction | str | None
    rule: str | None = None
    confidence: str | None = None

    @property
    def is_equal(self) -> bool:
        """True only for "equal" ("cant_tell" is not a pass)."""
        return self.result == "equal"


def compare_answers(
    gold: str, predicted: str, *, rel_tol: float = 1e-4, abs_tol: float = 1e-6, rounding: Rounding = "both"
) -> Comparison:
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
        rounding: which side may be a rounding of the other: "both" (default: 33.33 = 33.333 whichever
            is the gold), "reply" (only the reply may be rounded; a reply more precise than a decimal
            gold, such as 3.14159 for 3.14, is "not_equal"), or "none" (no rounding either way).
            An integer is never taken as a rounding, in any mode.

    Raises:
        TypeError: if an answer is not a string.
        ValueError: if `gold` is empty, a tolerance is negative, or `rounding` is unknown.
    """
    _check_gold(gold)
    if not isinstance(predicted, str):
        raise TypeError(f"predicted must be a str, got {type(predicted).__name__}")
    if rel_tol < 0 or abs_tol < 0:
        raise ValueError(f"tolerances must be >= 0, got rel_tol={rel_tol}, abs_tol={abs_tol}")
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDING_MODES)}, got {rounding!r}")
    gold_number, predicted_number = read_number(gold), read_number(predicted)
    tolerance = _Tolerance(rel_tol, abs_tol, rounding)
    if gold_number is not None and predicted_number is not None:
        return _compare_numbers(gold, predicted, gold_number, predicted_number, tolerance)
    if not predicted.strip():
        return Comparison("cant_tell", "the predicted answer is empty", "none", _value(gold_number), None)
    compound = _compare_compounds(gold, predicted, gold_number, predicted_number, tolerance)
    if compound is not None:
        return compound
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


@dataclass(frozen=True, slots=True)
class _Tolerance:
    rel_tol: float
    abs_tol: float
    rounding: str


def _compare_numbers(
    gold_text: str, predicted_text: str, gold: ParsedNumber, predicted: ParsedNumber, tolerance: _Tolerance
) -> Comparison:
    readings = [(gold, predicted, "")]
    # "50%" may be meant as 50 or as 0.5, "50 cents" as 50 or as $0.50: try both when only one side says so.
    if gold.percent != predicted.percent:
        readings.append(_scaled_reading(gold, predicted, "percent", Fraction(1, 100), 2))
    if gold.cents != predicted.cents:
        readings.append(_scaled_reading(gold, predicted, "cents", Fraction(1, 100), 2))
    # "7 dozen" answers "how many dozen" (7) as well as "how many eggs" (84); "$4 million", "how many
    # million dollars" (4). Only when one side alone has a scale word.
    if gold.scale != predicted.scale and 1 in (gold.scale, predicted.scale):
        scaled = gold if gold.scale != 1 else predicted
        readings.append(_scaled_reading(gold, predicted, "scale", Fraction(1, scaled.scale), None))
    for gold_reading, predicted_reading, note in readings:
        why = _numbers_equal(gold_reading, predicted_reading, tolerance)
        if why:
            return Comparison("equal", why + note, "numeric", gold_reading.value, predicted_reading.value)
    converted = _compare_units(gold_text, predicted_text, gold, predicted, tolerance)
    if converted is not None:
        return converted
    reason = f"{_show(gold.value)} and {_show(predicted.value)} differ"
    if tolerance.rounding == "reply" and _more_precise(predicted, gold) and _rounds_to(predicted, gold):
        reason = (f"{_show(predicted.value)} is more precise than the gold's {gold.decimals} decimals "
                  "(rounding='reply': only the reply may be rounded)")
    return Comparison("not_equal", reason, "numeric", gold.value, predicted.value)


def _scaled_reading(gold: ParsedNumber, predicted: ParsedNumber, flag: str, factor: Fraction, decimals: int | None):
    how = "a count of its scale word" if flag == "scale" else "a fraction of 1"
    marked = gold.scale != 1 if flag == "scale" else getattr(gold, flag)
    if marked:
        return gold.scaled(factor, decimals), predicted, f" (gold {flag} read as {how})"
    return gold, predicted.scaled(factor, decimals), f" (predicted {flag} read as {how})"


def _numbers_equal(gold: ParsedNumber, predicted: ParsedNumber, tolerance: _Tolerance) -> str | None:
    """Why `gold` and `predicted` count as the same number, or None if they do not."""
    if gold.value == predicted.value:
        return "exactly equal"
    short, long = sorted((gold, predicted), key=lambda n: float("inf") if n.decimals is None else n.decimals)
    difference = abs(gold.value - predicted.value)
    if short.decimals is not None:
        # 33.33 vs 33.333 or 100/3: the shorter was rounded from the longer. The longer must show at least
        # 3 decimals, so that 2.5 vs 2.46 (two rounded answers) stays different.
        rounding_allowed = tolerance.rounding == "both" or (tolerance.rounding == "reply" and short is predicted)
        if rounding_allowed and _rounds_to(long, short):
            return f"{_show(long.value)} rounds to {_show(short.value)}"
        # 72 vs 71.99999: float noise in the last written digits of an unrounded decimal.
        if short.kind == "integer" and long.kind in ("decimal", "scientific") and long.decimals is not None:
            if long.decimals >= 5 and difference <= Fraction(10, 10**long.decimals):
                return f"{_show(long.value)} is {_show(short.value)} up to float noise"
    if _unrounded(gold) and _unrounded(predicted):
        limit = max(Fraction(tolerance.abs_tol), Fraction(tolerance.rel_tol) * max(abs(gold.value), abs(predicted.value)))
        if difference <= limit:
            return f"equal within rel_tol={tolerance.rel_tol}, abs_tol={tolerance.abs_tol}"
    return None


def _more_precise(a: ParsedNumber, b: ParsedNumber) -> bool:
    return b.decimals is not None and (a.decimals is None or a.decimals > b.decimals)


def _rounds_to(long: ParsedNumber, short: ParsedNumber) -> bool:
    """True when the decimal `short` is `long` rounded to the decimals `short` shows (ties either way)."""
    places = short.decimals
    if short.kind != "decimal" or places is None or places < 1:
        return False
    long_places = float("inf") if long.decimals is None else long.decimals
    return long_places >= max(places + 1, 3) and abs(long.value - short.value) <= Fraction(1, 2 * 10**places)


_UNIT_WORD = re.compile(r"\d\s*([a-zA-Z]+)\b(?!/)")  # "5 km/h" is a rate: it converts to nothing here


def _unit_word(text: str) -> str | None:
    found = _UNIT_WORD.search(text)
    if found is None or unit_of(found.group(1)) is None:
        return None
    return found.group(1).lower()


_DOLLARS = re.compile(r"\$\s?\d")


def _compare_units(
    gold_text: str, predicted_text: str, gold: ParsedNumber, predicted: ParsedNumber, tolerance: _Tolerance
) -> Comparison | None:
    """90 minutes vs a gold of 1.5: the same quantity in another unit is not a plain mismatch."""
    if gold.percent or predicted.percent or gold.cents or predicted.cents:
        return None  # the cents rule has read both ways already
    # "$0.25" against a gold of 25: the same money in cents, and the gold's unit is not given.
    predicted_unit = "dollars" if _DOLLARS.search(predicted_text) else _unit_word(predicted_text)
    if predicted_unit is None:
        return None
    gold_unit = "dollars" if _DOLLARS.search(gold_text) else _unit_word(gold_text)
    for unit, value in conversions(predicted.value, predicted_unit):
        if gold_unit is not None and unit != gold_unit and unit_of(unit) != unit_of(gold_unit):
            continue
        reading = ParsedNumber(value, "integer" if value.denominator == 1 else "fraction", decimals_of(value))
        if _numbers_equal(gold, reading, tolerance):
            if gold_unit is not None:
                reason = f"{predicted_text.strip()} is {_show(value)} {gold_unit}, the gold's unit"
                return Comparison("equal", reason, "numeric", gold.value, value)
            reason = (f"the predicted {_show(predicted.value)} {predicted_unit} equals the gold only as "
                      f"{_show(value)} {unit}, and the gold's unit is not given")
            return Comparison("cant_tell", reason, "unit", gold.value, predicted.value)
    return None


def _compare_compounds(gold: str, predicted: str, gold_number, predicted_number, tolerance) -> Comparison | None:
    """ "7 hours and 0 minutes" against 7 (or 420): equal when the total in one of its units matches."""
    gold_parts, predicted_parts = _compound(gold), _compound(predicted)
    if gold_parts is None and predicted_parts is None:
        return None
    if gold_parts is not None and predicted_parts is not None:
        same = _base_total(gold_parts) == _base_total(predicted_parts)
        reason = "the same quantity" if same else "different quantities"
        return Comparison("equal" if same else "not_equal", reason, "numeric", None, None)
    parts, number, compound_is_gold = (
        (gold_parts, predicted_number, True) if gold_parts is not None else (predicted_parts, gold_number, False)
    )
    if number is None:
        return None
    for unit, total in parts:
        reading = ParsedNumber(total, "integer" if total.denominator == 1 else "fraction", decimals_of(total))
        pair = (reading, number) if compound_is_gold else (number, reading)
        why = _numbers_equal(*pair, tolerance)
        if why:
            return Comparison("equal", f"{why} (the total in {unit})", "numeric", pair[0].value, pair[1].value)
    shown = ", ".join(f"{_show(total)} {unit}" for unit, total in parts)
    return Comparison("not_equal", f"{_show(number.value)} is none of {shown}", "numeric",
                      *((None, number.value) if compound_is_gold else (number.value, None)))


def _compound(text: str):
    return read_compound(re.sub(r"\*\*|__|`|\\", "", text).lower())


def _base_total(parts) -> Fraction:
    unit, total = parts[0]
    return total * unit_of(unit)[1]


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
