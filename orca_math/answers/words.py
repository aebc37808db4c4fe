"""Simple English number words: "twelve", "forty-two", "one hundred and five", "a dozen", "two and a half"."""

from __future__ import annotations

import re
from fractions import Fraction

UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fourty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
# Fraction words: "three-eighths", "two and a quarter", "one third". They continue a run of number
# words but never start one, so "the third day" and "a fifth of the cake" stay words.
FRACTIONS = {
    "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4, "fourth": 4, "fourths": 4,
    "fifth": 5, "fifths": 5, "sixth": 6, "sixths": 6, "seventh": 7, "sevenths": 7, "eighth": 8, "eighths": 8,
    "ninth": 9, "ninths": 9, "tenth": 10, "tenths": 10, "twelfth": 12, "twelfths": 12,
    "hundredth": 100, "hundredths": 100,
}
SCALES = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000, "trillion": 10**12}
# Words that may sit inside a run of number words without being numbers themselves.
_GLUE = {"and", "a", "an"}
NUMBER_WORD = re.compile(
    r"\b(?:" + "|".join(sorted([*UNITS, *SCALES, "hundred", "dozen", "half"], key=len, reverse=True)) + r")\b"
)
_TOKEN = re.compile(r"[a-z]+")
_PRONOUN_BEFORE_ONE = {"no", "any", "some", "every", "each", "this", "that", "the", "which", "someone"}


def find_number_word_runs(text: str) -> list[tuple[int, int]]:
    """Spans of maximal runs of number words in lower-case `text` (glue words "and", "a" inside a run)."""
    runs: list[tuple[int, int]] = []
    tokens = list(_TOKEN.finditer(text))
    i = 0
    while i < len(tokens):
        if not _is_number_word(tokens[i].group()):
            i += 1
            continue
        start = tokens[i].start()
        # "a dozen", "a hundred": an article right before a scale word belongs to the run.
        if (
            i > 0
            and tokens[i - 1].group() in {"a", "an"}
            and tokens[i].group() in {"dozen", "hundred", *SCALES}
        ):
            start = tokens[i - 1].start()
        j = i
        end = tokens[i].end()
        while j + 1 < len(tokens):
            gap = text[tokens[j].end() : tokens[j + 1].start()]
            if gap.strip(" -") != "":
                break
            word = tokens[j + 1].group()
            if _is_number_word(word) or (word in FRACTIONS and _numerator_before(tokens, j)):
                j += 1
                end = tokens[j].end()
            elif word in _GLUE and _number_word_follows(tokens, j + 2):
                j += 1  # glue is kept only when another number word follows it
            else:
                break
        # "no one", "each one": a pronoun, not a number.
        if text[start:end] == "one" and i > 0 and tokens[i - 1].group() in _PRONOUN_BEFORE_ONE:
            i = j + 1
            continue
        runs.append((start, end))
        i = j + 1
    return runs


def _number_word_follows(tokens: list[re.Match[str]], index: int) -> bool:
    while index < len(tokens) and tokens[index].group() in _GLUE:
        index += 1
    if index >= len(tokens):
        return False
    word = tokens[index].group()
    # "two and a quarter": a fraction word after the glue continues the run.
    return _is_number_word(word) or (word in FRACTIONS and tokens[index - 1].group() in {"a", "an"})


def _numerator_before(tokens: list[re.Match[str]], index: int) -> bool:
    """Whether token `index` can be a fraction's numerator ("three" of "three-eighths", "a" of "a quarter")."""
    return tokens[index].group() in UNITS or tokens[index].group() in {"a", "an"}


def _is_number_word(word: str) -> bool:
    return word in UNITS or word in SCALES or word in {"hundred", "dozen", "half"}


def words_to_number(run: str) -> Fraction | None:
    """The value of one run of number words, or None when the words do not form a number.

    Args:
        run: lower-case words such as "one hundred and five", "forty-two", "a dozen", "two and a half".
    """
    words = [w for w in re.split(r"[\s-]+", run.strip()) if w]
    if not words:
        return None
    total = Fraction(0)
    current = Fraction(0)
    seen_number = False
    last_unit: int | None = None  # the unit word just before, a fraction word's numerator
    for index, word in enumerate(words):
        if word in FRACTIONS or (word == "half" and last_unit is not None):
            # "three-eighths", "one half", "a quarter" (the article counts one), "three halves".
            numerator = last_unit if last_unit is not None else (1 if index and words[index - 1] in {"a", "an"} else None)
            if numerator is None:
                return None
            if last_unit is not None:
                current -= last_unit
            current += Fraction(numerator, FRACTIONS.get(word, 2))
            seen_number, last_unit = True, None
            continue
        last_unit = UNITS[word] if word in UNITS and UNITS[word] < 20 else None
        if word in UNITS:
            current += UNITS[word]
            seen_number = True
        elif word == "hundred":
            current = (current or 1) * 100
            seen_number = True
        elif word == "dozen":
            current = (current or 1) * 12
            seen_number = True
        elif word in SCALES:
            total += (current or 1) * SCALES[word]
            current = Fraction(0)
            seen_number = True
        elif word == "half":
            rest = words[index + 1 :]
            # "half a dozen" scales what follows; "two and a half" adds one half.
            if rest and rest[0] in {"a", "an"} and len(rest) > 1:
                tail = words_to_number(" ".join(rest[1:]))
                return None if tail is None else total + current + tail / 2
            current += Fraction(1, 2)
            seen_number = True
        elif word in _GLUE:
            continue
        else:
            return None
    return total + current if seen_number else None
