"""The hedge rule: a final statement that gives several answers answers nothing.

A strict grader gives no credit for "either 300 or about 270 miles", "Answer: 85–90", "9 (or 1 under
the other reading)" or "6 or 7 boxes", even when the gold is one of the values. So `check_answer`
rules such a statement `not_equal`, with the reason "several answers", before comparing anything.

What is not a hedge:
- a restatement of one quantity: "90 minutes, or 1.5 hours", "$5 (five dollars)";
- arithmetic: "85 - 90 = -5", "from 20 to 35" (a change), "the difference between 12 and 5 is 7";
- two values that an operator or a result follows: "6 or 7 rows of 4, so 26 chairs" reads on to its answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from orca_math.answers.mentions import Mention, find_mentions
from orca_math.answers.normalize import read_number
from orca_math.answers.rating import restates, value_of
from orca_math.answers.units import unit_of

# Between two values: "or", "(or", ", or maybe", en/em dash; "either" before the first one.
_OR_GAP = re.compile(
    r"\s*(?:[,.;]\s*)?\(?\s*or\s+(?:maybe\s+|perhaps\s+|possibly\s+|about\s+|around\s+|roughly\s+|approximately\s+|"
    r"else\s+|even\s+)?\$?\s*$",
    re.I,
)
# "12 apples, possibly 14", "12, though it could be 14 if ...", "120 cars, give or take 5": a second
# value offered without "or", or a margin around the first.
_MAYBE_GAP = re.compile(
    r"\s*[,;(]\s*(?:but\s+|though\s+|although\s+)?(?:possibly|maybe|perhaps|(?:it|that|this)?\s*(?:could|might|may)"
    r"\s+(?:also\s+|well\s+)?be|give\s+or\s+take|plus\s+or\s+minus)\s+(?:about\s+|around\s+)?\$?\s*$|\s*±\s*\$?",
    re.I,
)
_EN_DASH_GAP = re.compile(r"\s*[–—]\s*\$?\s*$")
_HYPHEN_GAP = re.compile(r"-\$?$")
_RANGE_BEFORE = re.compile(
    r"(?:^|[:=]|\b(?:is|are|be|was|were|about|around|approximately|roughly|probably|likely|takes?|needs?|"
    r"costs?|gives?|gets?|answer))\s*\$?\s*$",
    re.I,
)
# "about 30 to 35 feet", "roughly 20-24": an estimate's range ("from about 20 to 35" is a change).
_TO_GAP = re.compile(r"\s+to\s+\$?\s*$", re.I)
_ESTIMATE_BEFORE = re.compile(r"\b(?:about|around|roughly|approximately|somewhere|anywhere)\s*\$?\s*$", re.I)
_CHANGE_BEFORE = re.compile(r"\bfrom\s+(?:about|around|roughly|approximately)\s*\$?\s*$", re.I)
# LaTeX text inside math: "\boxed{6 \text{ or } 7}" reads "6  or  7".
_LATEX_TEXT = re.compile(r"\\(?:text|textrm|mathrm|mbox)\s*\{([^{}]*)\}")
_BETWEEN_GAP = re.compile(r"\s+and\s+\$?\s*$", re.I)
_BETWEEN_BEFORE = re.compile(r"\b(?:somewhere\s+|anywhere\s+)?between\s+\$?\s*$", re.I)
_RELATION_BEFORE = re.compile(r"\b(?:difference|ratio|sum|distance|gap|product)\s+(?:is\s+)?between\s+\$?\s*$", re.I)
_READS_ON = re.compile(r"\s*(?:[a-z]+\s+){0,2}?(?:=|[-+*/×÷x]\s*\$?\d|(?:of|times|by)\s+\$?\d)", re.I)
MAY_JOIN_VALUES = re.compile(r"\bor\b|[–—±]|\bbetween\b|\d-\$?\d|\d\s+to\s+\$?\d|\bpossibly\b|\bmaybe\b|\bperhaps\b|"
                             r"\b(?:could|might|may)\s+(?:also\s+|well\s+)?be\b", re.I)
_EITHER = re.compile(r"\beither\b", re.I)


def find_hedge(statement: str, given: Callable[[Mention], bool] | None = None,
               whole_value: bool = False) -> tuple[str, str] | None:
    """The first two values a final statement offers as its answer ("60", "65"), or None when it gives one.

    Args:
        statement: the sentence or answer line that states the reply's answer.
        given: whether a quantity is one the question gives; two given values ("cost between $15000
            and $20000") restate the question's condition, not two answers.
        whole_value: `statement` is a marker's value alone ("85-90"): a hyphen then joins a range too.
    """
    if not MAY_JOIN_VALUES.search(statement):  # the common case: nothing that could join two values
        return None
    if "\\" in statement:
        statement = _LATEX_TEXT.sub(lambda m: f" {m.group(1)} ", statement)
    mentions = [m for m in find_mentions(statement) if m.kind not in ("year", "ordinal")]
    for first, second in zip(mentions, mentions[1:], strict=False):
        gap = statement[first.stop : second.start]
        if not _offers_two(statement, first, second, gap, whole_value):
            continue
        if _same_quantity(first, second) or _READS_ON.match(statement, second.stop):
            continue
        if gap.lstrip().startswith(",") and not _EITHER.search(statement, 0, first.start) and _other_terms(first, second):
            continue
        if given is not None and given(first) and given(second):
            continue
        return first.text, second.text
    return None


def _offers_two(statement: str, first: Mention, second: Mention, gap: str, whole_value: bool) -> bool:
    before = statement[: first.start]
    if _OR_GAP.fullmatch(gap) or _MAYBE_GAP.fullmatch(gap):
        return True
    # "85–90" after "is", ":" or "about": a range. A hyphen joins a range only in a marker's value alone
    # ("Answer: 85-90"): in prose "1-20%" subtracts and "Weeks 3-4" labels.
    estimate = _ESTIMATE_BEFORE.search(before) and not _CHANGE_BEFORE.search(before)
    dash = (_EN_DASH_GAP.fullmatch(gap) or ((whole_value or estimate) and _HYPHEN_GAP.fullmatch(gap))
            or (estimate and _TO_GAP.fullmatch(gap)))
    if dash and first.kind in ("number", "word") and (whole_value or estimate or _RANGE_BEFORE.search(before)):
        a, b = value_of(first), value_of(second)
        return a is not None and b is not None and a < b
    if _BETWEEN_GAP.fullmatch(gap) and _BETWEEN_BEFORE.search(before):
        return not _RELATION_BEFORE.search(before)
    return False


def _other_terms(first: Mention, second: Mention) -> bool:
    """ "4 notebooks, or 2 packs of two", "6 teams, or 3 pairs": the same thing counted in other terms
    (only after ", or", with no "either" before).

    Two measures in one dimension that differ ("90 minutes, or 2 hours") stay two answers.
    """
    if not first.unit or not second.unit:
        return False
    a, b = unit_of(first.unit), unit_of(second.unit)
    if a is not None and b is not None:
        return False
    return first.unit.lower().rstrip("s") != second.unit.lower().rstrip("s")


def _same_quantity(first: Mention, second: Mention) -> bool:
    """ "90 minutes, or 1.5 hours", "18 or eighteen", "0.60 or 60%": one answer written twice."""
    if restates(first, second) or restates(second, first):
        return True
    a, b = read_number(first.text), read_number(second.text)
    if a is None or b is None:
        return False
    if a.percent != b.percent:
        return (a.value if a.percent else a.value * 100) == (b.value if b.percent else b.value * 100)
    return a.value == b.value
