"""Reading what a question asks for: the unit of the answer, its dimension, and the object it counts.

"How many minutes does John have to nap?" asks for minutes (a time); "How much did she pay?" for
money; "How many marbles does Lena have now?" for a count of marbles; "How long will it take, in
hours?" for hours. `check_answer` uses the ask two ways:

- among the candidates of a closing statement, one in another dimension ("60 miles" when hours are
  asked, "$3900" when a count of cookies is) or counting another object ("12 stickers" when marbles
  are asked, beside "31 marbles") is not the answer, and is set aside with the reason "unit";
- a bare gold answer is read in the asked unit, so "95 minutes (that is 1 hour 35 minutes)" and
  "1 hour 35 minutes" both decide against a gold of 95 when minutes are asked, and "90 minutes"
  against a gold of 1.5 when hours are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from orca_math.answers.units import unit_of


@dataclass(frozen=True, slots=True)
class Ask:
    """What a question asks for.

    Attributes:
        unit: the unit word the answer is asked in ("minutes", "dollars"), or None.
        dimension: the unit's dimension ("time", "length", "mass", "volume", "money"), or "count"
            when a number of things is asked, or None when the ask is not read.
        noun: the things counted ("marbles"), for a count; else None.
    """

    unit: str | None
    dimension: str | None
    noun: str | None


_NONE = Ask(None, None, None)
_IN_UNIT = re.compile(r"\b(?:in|into|(?:measured|expressed)\s+in)\s+(?:total\s+)?([a-z]+)\s*[?.]?\s*$", re.I)
_HOW_MANY = re.compile(
    r"\bhow\s+many\s+(?:more\s+|fewer\s+|less\s+|total\s+|additional\s+|extra\s+|whole\s+|full\s+|complete\s+|"
    r"different\s+|square\s+|cubic\s+)*([a-z]+)",
    re.I,
)
_MONEY = re.compile(
    r"\bhow\s+much\s+(?:more\s+|less\s+)?(?:money|in\s+dollars|dollars|cash|change|profit|revenue|interest|"
    r"(?:does|did|do|will|would|should|must|can|could|is|was|has|had)\b[^?]*\b(?:cost|costs|pay|paid|spend|spent|"
    r"earn|earned|make|made|save|saved|charge|charged|owe|owed|lose|lost|raise|raised|collect|collected|profit)\b)",
    re.I,
)
# Words after "how many" that are not what is counted.
_NOT_NOUNS = frozenset(
    "of times did does do is are was were will would can could has have had more the a an in".split()
)


@lru_cache(maxsize=4096)
def read_ask(question: str) -> Ask:
    """What `question` asks for, read from its last question sentence (cached: graded per sample)."""
    ask = last_ask(question)
    stated = _IN_UNIT.search(ask)
    if stated:
        found = unit_of(stated.group(1))
        if found is not None:
            return Ask(stated.group(1).lower(), found[0], None)
    many = _HOW_MANY.search(ask)
    if many:
        word = many.group(1).lower()
        found = unit_of(word)
        if found is not None:
            return Ask(word, found[0], None)
        if word not in _NOT_NOUNS:
            return Ask(None, "count", word)
        return _NONE
    if _MONEY.search(ask):
        return Ask("dollars", "money", None)
    return _NONE


def last_ask(question: str) -> str:
    """The last sentence of `question` that asks something (its "How many ...?"), else all of it."""
    end = question.rfind("?")
    if end < 0:
        return question
    start = 0
    for start in (m.end() for m in _SENTENCE_END.finditer(question, 0, end)):  # noqa: B007 - the last one
        pass
    return question[start : end + 1]


_SENTENCE_END = re.compile(r"[.!?](?=\s)")


def dimension_of(unit: str | None) -> str | None:
    """The dimension of a candidate's unit word ("$" and "dollars" are money), or None for other words."""
    found = unit_of(unit)
    return found[0] if found is not None else None
