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

from orca_math.answers.mentions import Mention, find_mentions
from orca_math.answers.rating import restates, value_of

# Between two values: "or", "(or", ", or maybe", en/em dash; "either" before the first one.
_OR_GAP = re.compile(
    r"\s*(?:,\s*)?\(?\s*or\s+(?:maybe\s+|perhaps\s+|possibly\s+|about\s+|around\s+|roughly\s+|approximately\s+|"
    r"else\s+|even\s+)?\$?\s*$",
    re.I,
)
_DASH_GAP = re.compile(r"\s*[–—]\s*\$?\s*$|-\$?$")
_BETWEEN_GAP = re.compile(r"\s+and\s+\$?\s*$", re.I)
_BETWEEN_BEFORE = re.compile(r"\b(?:somewhere\s+|anywhere\s+)?between\s+\$?\s*$", re.I)
_RELATION_BEFORE = re.compile(r"\b(?:difference|ratio|sum|distance|gap|product)\s+(?:is\s+)?between\s+\$?\s*$", re.I)
_READS_ON = re.compile(r"\s*(?:[a-z]+\s+){0,2}?(?:=|[-+*/×÷x]\s*\$?\d|(?:of|times|by)\s+\$?\d)", re.I)
MAY_JOIN_VALUES = re.compile(r"\bor\b|[–—]|\bbetween\b|\d-\$?\d", re.I)
_FROM_BEFORE = re.compile(r"\bfrom\s+\$?\s*$", re.I)


def find_hedge(statement: str) -> tuple[str, str] | None:
    """The first two values a final statement offers as its answer ("60", "65"), or None when it gives one.

    Args:
        statement: the sentence or answer line that states the reply's answer.
    """
    if not MAY_JOIN_VALUES.search(statement):  # the common case: nothing that could join two values
        return None
    mentions = [m for m in find_mentions(statement) if m.kind not in ("year", "ordinal")]
    for first, second in zip(mentions, mentions[1:], strict=False):
        gap = statement[first.stop : second.start]
        if not _offers_two(statement, first, second, gap):
            continue
        if _same_quantity(first, second) or _READS_ON.match(statement, second.stop):
            continue
        return first.text, second.text
    return None


def _offers_two(statement: str, first: Mention, second: Mention, gap: str) -> bool:
    before = statement[max(0, first.start - 40) : first.start]
    if _OR_GAP.fullmatch(gap):
        return True
    if _DASH_GAP.fullmatch(gap) and first.kind in ("number", "word") and not _FROM_BEFORE.search(before):
        # "85–90", "85-90": a range; "85 - 90" with spaces is a subtraction and is not matched here.
        a, b = value_of(first), value_of(second)
        return a is not None and b is not None and a < b
    if _BETWEEN_GAP.fullmatch(gap) and _BETWEEN_BEFORE.search(before):
        return not _RELATION_BEFORE.search(before)
    return False


def _same_quantity(first: Mention, second: Mention) -> bool:
    """ "90 minutes, or 1.5 hours", "18 or eighteen": one answer written twice."""
    if restates(first, second) or restates(second, first):
        return True
    a, b = value_of(first), value_of(second)
    return a is not None and a == b
