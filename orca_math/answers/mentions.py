"""Finding the numbers a stretch of free text mentions, each with its unit, as whole quantities.

A mention is read whole: "3 1/4 hours" is one mention (not "1/4"), "75 cents" keeps its unit, "$45k",
"2.5 thousand", "50%", "3:30 p.m.", "2 hours and 40 minutes" and number words ("twelve", "a dozen") are
one mention each. The text of a mention (number plus unit) is what `compare_answers` is given, so its
cents, percent and compound rules apply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from orca_math.answers.units import unit_of
from orca_math.answers.words import NUMBER_WORD, find_number_word_runs

_VULGAR = "¼½¾⅓⅔⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞"
_MENTION = re.compile(
    r"(?<![\w.\\])(?<!\d,)"
    r"(?P<sign>[-−](?=\s?[\d$.]))?"
    r"(?P<cur>\\?\$\s?|[€£¥₹]\s?)?"
    r"(?P<num>"
    r"\d{1,2}:\d{2}(?::\d{2})?(?:\s?[ap]\.?\s?m\b\.?)?"  # a clock time
    r"|\d+:\d+"  # a ratio
    r"|(?:\d+\s*)?\\[dt]?frac\s*\{\s*\d+\s*\}\s*\{\s*\d+\s*\}"  # LaTeX fraction or mixed number
    r"|\d+\s+\d+\s*/\s*\d+(?![\d/.])"  # a mixed number: 3 1/4
    rf"|\d*[{_VULGAR}]"
    # "$400 000", "= 3 400.": spaced thousands, after a currency sign or before punctuation only, so that
    # "3 100-page books" and "5 200 ml bottles" stay two numbers.
    r"|(?<=\$)\d{1,3}(?: \d{3})+(?:\.\d+)?(?![\d/])"
    r"|\d{1,3}(?: \d{3})+(?=\s*(?:[.,;:!?=/*+)]|$))"
    r"|(?:(?<== )|(?<==))\d{1,3}(?: \d{3})+(?![\d/-])"  # "= 325 000 cars": a result written with spaces
    r"|(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?/\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)?"
    r"|\.\d+"
    r")"
    r"(?P<suffix>\s?(?:%|\\%|percent\b|per\s?cent\b)|[kK]\b|\s(?:thousand|million|billion|trillion|dozen|hundred)\b)?"
    r"(?P<ordinal>(?:st|nd|rd|th)\b)?"
    r"(?!\d)"
    r"(?:\s?(?P<unit>[^\W\d_]+(?:/[^\W\d_]+)?|¢))?"
)
# Words after a number that are not its unit: operators, glue and the start of the next clause.
_NOT_UNITS = frozenset(
    "x times plus minus and or of is are was were to in for each per a an the then so which that more less "
    "fewer left at on by with from than as if when after before over into total altogether overall remaining "
    "would will can could should must may might has have had do does did it its he she they we you i got "
    "this these those all both every because since but not equals equal divided multiplied gives give gave makes "
    "comes adds".split()
)
_CLOCK = re.compile(r":\d{2}(?!\d)")
_ONE_BEFORE_NOUN = re.compile(r"\s+(?!(?:left|more|remaining|extra|in\s+total|altogether)\b)[a-z]")
_YEAR = re.compile(r"(?:1[5-9]|20)\d\d")


@dataclass(frozen=True, slots=True)
class Mention:
    """One quantity mentioned in a text.

    Attributes:
        start: offset of the first character (sign, currency or digit) in the text.
        end: offset just past the number and its suffix (%, k, thousand).
        stop: offset just past the unit word, or `end` when there is none.
        text: the text to compare (number, suffix and unit), e.g. "75 cents", "$45k", "3 1/4 hours".
        unit: the unit word ("hours", "$" for a currency sign), or None.
        kind: "number", "word" (written in words), "clock", "ratio", "compound", "ordinal" ("6th"), or
            "year" ("in 2019", never a candidate).
    """

    start: int
    end: int
    stop: int
    text: str
    unit: str | None
    kind: str


def find_mentions(text: str) -> list[Mention]:
    """Every quantity mentioned in `text`, in order (ordinals and years are marked as such)."""
    mentions = [_from_match(text, match) for match in _MENTION.finditer(text)]
    mentions = [m for m in mentions if m is not None]
    lower = text.lower()
    # Word runs are found in a lower-cased copy, whose offsets must line up; most sentences have none.
    if len(lower) == len(text) and NUMBER_WORD.search(lower):
        taken = [(m.start, m.stop) for m in mentions]
        for start, end in find_number_word_runs(lower):
            if any(a < end and start < b for a, b in taken) or _not_a_quantity(lower, start, end):
                continue
            unit_match = re.match(r"\s?([^\W\d_]+)", text[end:])
            unit = unit_match.group(1) if unit_match else None
            stop = end
            if unit is not None and unit.lower() not in _NOT_UNITS:
                stop = end + unit_match.end()
            else:
                unit = None
            mentions.append(Mention(start, end, stop, text[start:stop], unit, "word"))
        mentions.sort(key=lambda m: m.start)
    return _merge_compounds(text, mentions)


def _from_match(text: str, match: re.Match[str]) -> Mention | None:
    number = match.group("num")
    start = match.start()
    sign = match.group("sign")
    # "10 - 3" and "10-3" subtract: the minus is a sign only when glued to the number and not after one.
    if sign and (text[match.end("sign") : match.end("sign") + 1] == " " or re.search(r"[\d)%]\s*$", text[:start])):
        start = match.end("sign")
        while start < len(text) and text[start] == " ":
            start += 1
    end = match.end("ordinal") if match.group("ordinal") else max(match.end("num"), match.end("suffix"))
    if match.group("ordinal"):
        return Mention(start, end, end, text[start:end], None, "ordinal")
    kind = "number" if ":" not in number else ("clock" if _CLOCK.search(number) else "ratio")
    if kind == "number" and not match.group("cur") and _YEAR.fullmatch(number) and _looks_like_year(text, start):
        return Mention(start, end, end, number, None, "year")  # "in 2019": a date, not a quantity
    unit = match.group("unit")
    if kind == "number" and unit is not None and match.start("unit") == match.end("num") and len(unit) == 1:
        if unit.islower() and unit_of(unit) is None and unit != "k":
            return None  # "2x": a coefficient of a variable, not a quantity ("240A" is amperes)
        if unit.isupper():
            return Mention(start, end, end, text[start:end], unit, kind)  # "240A": compare the number alone
    stop = end
    if unit is not None and unit.lower() not in _NOT_UNITS and kind == "number":
        stop = match.end("unit")
    else:
        unit = None
    if match.group("cur") and unit is None:
        unit = "$" if "$" in match.group("cur") else None
    return Mention(start, end, stop, text[start:stop], unit, kind)


def _looks_like_year(text: str, start: int) -> bool:
    return bool(re.search(r"\b(?:in|since|by|of|year)\s+$", text[max(0, start - 8) : start], re.I))


def _not_a_quantity(lower: str, start: int, end: int) -> bool:
    """Number words that are not quantities here: a bare "half", "one of", "one another", "one by one"."""
    words = lower[start:end]
    if words in {"half", "a half"}:
        return True
    if words == "one":
        # "one pen costs $7", "one of them", "in one hour": a determiner, not a count; "one left" counts,
        # and so does a result: "$2 / $2 = one dollar".
        return bool(_ONE_BEFORE_NOUN.match(lower, end)) and not lower[:start].rstrip().endswith("=")
    return False


_COMPOUND_GAP = re.compile(r"\s*,?\s*(?:and\s+)?")


def _merge_compounds(text: str, mentions: list[Mention]) -> list[Mention]:
    """Join "2 hours" + "40 minutes" (same dimension, falling sizes, only "and"/"," between) into one."""
    merged: list[Mention] = []
    for mention in mentions:
        previous = merged[-1] if merged else None
        if previous is not None and _continues(text, previous, mention):
            merged[-1] = Mention(
                previous.start, mention.end, mention.stop, text[previous.start : mention.stop],
                previous.unit, "compound",
            )
        else:
            merged.append(mention)
    return merged


def _continues(text: str, previous: Mention, mention: Mention) -> bool:
    if mention.kind not in ("number", "word") or previous.kind not in ("number", "compound"):
        return False
    if not _COMPOUND_GAP.fullmatch(text[previous.stop : mention.start]):
        return False
    last_unit = previous.text.rsplit(None, 1)[-1] if previous.kind == "compound" else previous.unit
    a, b = unit_of(last_unit), unit_of(mention.unit)
    return a is not None and b is not None and a[0] == b[0] and a[1] > b[1]
