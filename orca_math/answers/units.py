"""Units of measure: which dimension a unit word belongs to, and compound quantities ("2 h 40 min").

Used for two things only:
- to tell a restated conversion ("90 minutes, or 1.5 hours") from two different answers, by checking
  that the two values really are the same quantity;
- to read compound quantities ("7 hours and 0 minutes", "5 feet 6 inches", "$3 and 50 cents") as the
  total in each of their units, since a gold of 7 (hours) or 420 (minutes) may be meant.

Months and years are left out on purpose: their length in days is not fixed.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

# unit word -> (dimension, size in the dimension's base unit). Plural and abbreviated forms are listed
# explicitly: guessing plurals would turn "ms" or "gs" into units.
_UNITS: dict[str, tuple[str, Fraction]] = {}


def _add(dimension: str, size: Fraction | int | str, *names: str) -> None:
    for name in names:
        _UNITS[name] = (dimension, Fraction(size))


_add("time", 1, "second", "seconds", "sec", "secs", "s")
_add("time", 60, "minute", "minutes", "min", "mins")
_add("time", 3600, "hour", "hours", "hr", "hrs", "h")
_add("time", 86400, "day", "days")
_add("time", 604800, "week", "weeks")
_add("length", "0.001", "mm", "millimeter", "millimeters", "millimetre", "millimetres")
_add("length", "0.01", "cm", "centimeter", "centimeters", "centimetre", "centimetres")
_add("length", 1, "m", "meter", "meters", "metre", "metres")
_add("length", 1000, "km", "kilometer", "kilometers", "kilometre", "kilometres")
_add("length", "0.0254", "inch", "inches")  # not "in": that is a preposition far more often
_add("length", "0.3048", "ft", "foot", "feet")
_add("length", "0.9144", "yd", "yard", "yards")
_add("length", "1609.344", "mi", "mile", "miles")
_add("mass", "0.001", "mg", "milligram", "milligrams")
_add("mass", 1, "g", "gram", "grams")
_add("mass", 1000, "kg", "kilogram", "kilograms", "kilo", "kilos")
_add("mass", "28.349523125", "oz", "ounce", "ounces")
_add("mass", "453.59237", "lb", "lbs", "pound", "pounds")
_add("volume", 1, "ml", "milliliter", "milliliters", "millilitre", "millilitres")
_add("volume", 1000, "l", "liter", "liters", "litre", "litres")
_add("volume", "236.5882365", "cup", "cups")
_add("volume", "473.176473", "pint", "pints")
_add("volume", "946.352946", "quart", "quarts")
_add("volume", "3785.411784", "gallon", "gallons")
_add("money", 100, "dollar", "dollars", "$")
_add("money", 1, "cent", "cents", "¢")


def unit_of(word: str | None) -> tuple[str, Fraction] | None:
    """(dimension, size in base units) of a unit word such as "hours", "kg", "$"; None if not a unit."""
    if not word:
        return None
    return _UNITS.get(word.lower().rstrip("."))


def same_quantity(first: Fraction, first_unit: str, second: Fraction, second_unit: str,
                  second_decimals: int | None) -> bool:
    """True when `second` (in `second_unit`) restates `first` (in `first_unit`) in another unit.

    The restated value may be rounded to the (one or more) decimals it was written with: "100 minutes,
    or about 1.67 hours" is a restatement, "90 minutes, or 2 hours" is not.
    """
    a, b = unit_of(first_unit), unit_of(second_unit)
    if a is None or b is None or a[0] != b[0] or a[1] == b[1]:
        return False
    exact = first * a[1] / b[1]
    if exact == second:
        return True
    # Rounded only to a decimal place: "90 minutes, or 2 hours" is a different (wrong) figure, not a rounding.
    if second_decimals is None or second_decimals < 1:
        return False
    return abs(exact - second) <= Fraction(1, 2 * 10**second_decimals)


def conversions(value: Fraction, unit: str) -> list[tuple[str, Fraction]]:
    """The same quantity in the other common units of its dimension: 90 minutes -> hours 1.5, seconds 5400."""
    return [(name, value * ratio) for name, ratio in _ratios(unit.lower())]


@lru_cache(maxsize=256)
def _ratios(unit: str) -> tuple[tuple[str, Fraction], ...]:
    found = unit_of(unit)
    if found is None:
        return ()
    dimension, size = found
    names: dict[Fraction, str] = {}
    for name, (other_dimension, other_size) in _UNITS.items():
        # One name per size, the longest ("hours", not "h"), for readable reasons.
        if other_dimension == dimension and other_size != size and len(name) > len(names.get(other_size, "")):
            names[other_size] = name
    return tuple((name, size / other_size) for other_size, name in names.items())


# "2 hours and 40 minutes", "1 h 30 min", "5 feet, 6 inches", "$3 and 50 cents", "3 lb 4 oz".
_PART = r"(?:\$\s?(\d+(?:\.\d+)?)(?![\d.])|(\d+(?:\.\d+)?)\s*([a-z]+|¢))"
_COMPOUND = re.compile(rf"^{_PART}(?:\s*,?\s*(?:and\s+)?{_PART}){{1,2}}$")
_PARTS = re.compile(_PART)


@lru_cache(maxsize=4096)
def read_compound(text: str) -> tuple[tuple[str, Fraction], ...] | None:
    """Readings of a compound quantity: ("hours", 8/3), ("minutes", 160) for "2 hours and 40 minutes".

    Args:
        text: normalised (lower-case) answer text; a leading "$" marks dollars.

    Returns:
        One (unit, total) pair per unit the text names, or None when the text is not a compound of two
        or three parts in one dimension, each unit smaller than the one before.
    """
    stripped = text.strip().rstrip(".")
    if not _COMPOUND.match(stripped):
        return None
    parts = []
    for match in _PARTS.finditer(stripped):
        dollars, number, unit = match.groups()
        unit = "$" if dollars is not None else unit
        found = unit_of(unit)
        if found is None:
            return None
        parts.append((unit, found, Fraction(dollars if dollars is not None else number)))
    dimensions = {found[0] for _, found, _ in parts}
    sizes = [found[1] for _, found, _ in parts]
    if len(dimensions) != 1 or any(a <= b for a, b in zip(sizes, sizes[1:], strict=False)):
        return None
    total = sum(value * found[1] for _, found, value in parts)
    return tuple((unit, total / found[1]) for unit, found, _ in parts)
