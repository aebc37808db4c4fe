"""Setting aside the quantities of a closing statement that are plainly not its answer.

"Out of 50 students, 15 walk, so 35 take the bus." has three numbers, but with the question at hand
("Of 50 students, 15 walk to school. How many take the bus?") two of them are the question's own
numbers written again, and one candidate is left: 35. Set aside, with the reason recorded on the
`Candidate`:

- "question": its value is a number the question gives, in a unit that agrees (a percent only matches
  a percent: "40%" in the question does not set aside "40 stickers", and "2 inches" does not set aside
  "2 days");
- "aside": inside parentheses ("(He gave away 9.)", "$45 in total (3 tickets at $15 each)"); a trailing
  remark sentence is not set aside, since it often restates the answer ("This is 60% of the class.");
- "part": a count of part of something named before ("The total is 11 apples; 4 of them were green.");
- "count": a group the problem already named, counted in words after "the", "these", "both"
  ("Together, the three siblings wrote 180 + 180 = 360 stories in the two weeks.");
- "operand": what a step of algebra divides or multiplies by ("Dividing both sides by 11, we get
  h = 8,000.", "Subtracting nine from both sides ...");
- "conversion": one unit of a known kind in a conversion fact ("There are 60 minutes in 1 hour",
  "Since 1 hour has 60 minutes", "12 inches are in 1 foot");
- "unit": not what the question asks for (see `orca_math.answers.ask`): another dimension ("60 miles"
  when hours are asked, "$39" when a count is), or another object ("12 stickers" beside "31
  marbles" when marbles are asked). When every candidate would be set aside this way, none is.

Setting aside is a reading of the reply alone and does not know the gold. `check_answer` decides on the
one candidate left only when no set-aside candidate equals the gold: a gold that is one of the
question's numbers ("how many are left" when as many were bought as sold) keeps every reading open.
The operands of an equation ("48 + 24 = 72") are never candidates at all (see `closing`).
"""

from __future__ import annotations

import re
from dataclasses import replace
from fractions import Fraction
from functools import lru_cache

from orca_math.answers.ask import Ask, dimension_of, last_ask, read_ask
from orca_math.answers.closing import Candidate
from orca_math.answers.mentions import find_mentions
from orca_math.answers.normalize import read_number
from orca_math.answers.parts import explains_the_answer_before, written_values
from orca_math.answers.rating import CONCLUSION
from orca_math.answers.units import unit_of

SET_ASIDE_REASONS = ("question", "aside", "part", "count", "operand", "conversion", "unit")

_PART_AFTER = re.compile(r"\s+of\s+(?:them|those|these|which)\b", re.I)
# "the three siblings", "in the two weeks", "both two": a group the problem already named, in words.
_COUNT_BEFORE = re.compile(r"\b(?:the|these|those|all|both)\s+$", re.I)
# "dividing both sides by 11, we get h = 8,000", "subtracting nine from both sides": a step's operand.
_STEP_OPERAND_BEFORE = re.compile(
    r"\b(?:divid(?:e|es|ed|ing)|multipl(?:y|ies|ied|ying)|subtract(?:s|ed|ing)?|add(?:s|ed|ing)?)\b"
    r"[^.;:\n]{0,40}?\b(?:by|from|to)\s+$|\b(?:subtract(?:s|ed|ing)?|add(?:s|ed|ing)?)\s+$",
    re.I,
)
_WORD_NUMBER_START = re.compile(r"[^\W\d_]")
# "1 hour", "one foot", "a pound": one unit, which a conversion fact names beside its size in another unit.
_ONE_UNIT = re.compile(r"(?:1|one|an?)\s+(?P<unit>[^\W\d_]+)", re.I)
_CONVERSION_BEFORE = re.compile(r"\d[^.;:\n]{0,30}?\b(?:in|per|make|makes)\s+$", re.I)  # "60 minutes in 1 hour"
_CONVERSION_AFTER = re.compile(r"\s+(?:has|have|is|equals|contains|=)\s+\d", re.I)  # "1 hour has 60 minutes"
# A question number: (value, is a percent, unit key or None).
Given = tuple[Fraction, bool, object]


@lru_cache(maxsize=4096)
def question_numbers(question: str) -> frozenset[Given]:
    """(value, is a percent, unit) of every quantity the question mentions, in digits or words.

    Cached: the same question is graded against every sample drawn for it.
    """
    numbers: set[Given] = set()
    for mention in find_mentions(question):
        if mention.kind in ("clock", "ratio"):
            numbers.add((Fraction(0), False, _clock_key(mention.text)))
        elif mention.kind in ("number", "word", "ordinal"):
            numbers.update(_keys(mention.text, mention.unit))
        elif mention.kind == "compound":  # "1 hour and 50 minutes": each part is a number the question gives
            for part in find_mentions(re.sub(r"\band\b|,", " ", mention.text)):
                numbers.update(_keys(part.text, part.unit))
    return frozenset(numbers)


@lru_cache(maxsize=1024)
def question_recap(question: str):
    """A test for sentences that only restate `question`, for `read_closing`'s `recap` (cached per question).

    A sentence restates the question when it is one of the question's sentences written again; when it
    has two or more quantities, all of them numbers the question gives, and no "=" or conclusion word
    ("So Lena has 31 marbles. She began with 50, lost 12 and gave away 7."); or when it is a check: an
    equation whose result is a number the question gives, and whose other numbers are given or were
    written just before ("It will take Sam 15 days. Each day he reads 12 pages, and 15 × 12 = 180."); or
    when it only explains an answer the sentence before states (see `orca_math.answers.parts`).
    """
    given = question_numbers(question)
    words = _plain_words(question)
    # The ask's words, less the things it counts: a recap names them too ("She had 5 boxes of 12 crayons").
    ask = read_ask(question)
    ask_words = _content_words(last_ask(question)) - _content_words(ask.noun or "")

    # The ask's own words, less the things it counts and names ("Jen"): an answer stated first says them.
    echo_words = _stems(_CAPITALISED.sub(" ", last_ask(question))) - _stems(ask.noun or "")

    def restates_question(sentence: str, mentions: list, before: str) -> bool:
        plain = _plain_words(sentence)
        if len(plain) > 3 and plain in words:
            return True
        previous = _SENTENCE_SPLIT.split(before.rstrip())[-1]
        if echo_words and explains_the_answer_before(
            sentence, mentions, previous, echo_words, words=_stems,
            given=lambda mention: _given(mention, given),
            off=lambda text: _is_off(Candidate((text,), (0, 0), "neutral"), ask),
        ):
            return True
        # "..., so the total is 44" may be a (wrong) answer that happens to restate the question, and so
        # may "He gets paid $10,000 because ... 30 points" for "How much does he get paid?": a sentence
        # that shares a word with the ask speaks to it ("We used $6 and $11" does not).
        if len(mentions) < 2 or CONCLUSION.search(sentence):
            return False
        # Units must agree as for setting aside: "She needs 8 boxes to pack all 56 pencils." for a
        # question with "8 pencils" is an answer, not a recap.
        is_given = [_given(m, given) for m in mentions]
        if "=" not in sentence:
            return all(is_given) and not _content_words(sentence) & ask_words
        if not is_given[-1] or sentence.rfind("=") > mentions[-1].start:
            return False  # an equation whose result is new, or not the last quantity: a step, not a check
        # The sentence before states its answer plainly (no equation), and the check uses it: "It will
        # take Sam 15 days." then "15 × 12 = 180". After "6 + 3 = 9 oranges", "12 - 9 = 3" is a step.
        if "=" in previous or all(is_given):  # "12/3 = 4 pounds": all given, yet a step
            return False
        stated = written_values(previous)
        return all(given_one or ((parsed := read_number(m.text)) is not None and parsed.value in stated)
                   for m, given_one in zip(mentions, is_given, strict=True))

    # "If she had 3 more, how many would she have?": then a counterfactual closing is the answer.
    restates_question.hypothetical = bool(_HYPOTHETICAL.search(question))  # type: ignore[attr-defined]
    return restates_question


_HYPOTHETICAL = re.compile(r"\bwould\b|\bif\b[^?.]*\b(?:had|(?:it|he|she|i|this|that)\s+were)\b", re.I)
_CAPITALISED = re.compile(r"\b[A-Z]\w*")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n")


def _given(mention, given: frozenset[Given]) -> bool:
    """Whether `mention` is a quantity the question gives, in a unit that agrees."""
    return bool(_keys(mention.text, mention.unit)) and _in_question(Candidate((mention.text,), (0, 0), "neutral"), given)


def given_by(question: str):
    """A test for mentions that repeat a number `question` gives, in a unit that agrees."""
    given = question_numbers(question)
    return lambda mention: _given(mention, given)


def _content_words(text: str) -> set[str]:
    """Lower-case words of `text` that carry meaning (plural "s" dropped), for comparing with the ask."""
    words = {word.rstrip("s") for word in _WORD.findall(text.lower())}
    return {word for word in words if len(word) > 2 and word not in _STOP_WORDS}


_WORD = re.compile(r"[a-z]+")
_STOP_WORDS = frozenset(
    "how many much does did doe was were will would can could the and for with from that this what which who "
    "whom whose their they them she her his him its you your are have ha had been being there then than "
    "all total altogether each every some any into onto over after before if when now only just more less "
    "value given problem question use used start started began".split()
)


def _stems(text: str) -> set[str]:
    """`_content_words` with "-ed" and "-ing" dropped too, so "picked" speaks to "pick"."""
    return {_SUFFIX.sub("", word) or word for word in _content_words(text)}


_SUFFIX = re.compile(r"(?<=\w\w\w)(?:ed|ing)$")


def _plain_words(text: str) -> str:
    return " ".join(re.sub(r"[^\w$.%]+|(?<!\d)\.|\.(?!\d)", " ", text.lower()).split())


def set_aside(text: str, candidates: tuple[Candidate, ...], question: str | None) -> tuple[Candidate, ...]:
    """`candidates` with `set_aside` filled in where a candidate is plainly not the answer."""
    given = question_numbers(question) if question else frozenset()
    marked = []
    for candidate in candidates:
        reason = None
        start = candidate.span[0]
        if _in_parentheses(text, start):
            reason = "aside"
        elif _PART_AFTER.match(text, candidate.span[1]):
            reason = "part"
        elif _WORD_NUMBER_START.match(candidate.texts[0]) and _COUNT_BEFORE.search(text, max(0, start - 12), start):
            reason = "count"
        elif _STEP_OPERAND_BEFORE.search(text, max(0, start - 80), start):
            reason = "operand"
        elif _is_conversion_fact(text, candidate):
            reason = "conversion"
        elif given and _in_question(candidate, given):
            reason = "question"
        marked.append(replace(candidate, set_aside=reason) if reason else candidate)
    return _off_the_ask(marked, read_ask(question)) if question else tuple(marked)


def _off_the_ask(candidates: list[Candidate], ask: Ask) -> tuple[Candidate, ...]:
    """`candidates` with those in another dimension, or counting other things, set aside as "unit"."""
    if ask.dimension is None:
        return tuple(candidates)
    marked = [replace(c, set_aside="unit") if c.set_aside is None and _is_off(c, ask) else c for c in candidates]
    if ask.noun is not None:
        marked = _other_objects(marked, ask.noun)
    if ask.unit is not None and ask.dimension != "money":
        marked = _other_units(marked, ask.unit)
    if all(c.set_aside for c in marked):
        return tuple(candidates)  # the ask was misread, or the reply answers in another unit: no reading
    return tuple(marked)


def _is_off(candidate: Candidate, ask: Ask) -> bool:
    """Whether the candidate is in another dimension than the ask's (or a share, or a count of things)."""
    if ask.dimension is None:
        return False
    dimensions = {_dimension(text) for text in candidate.texts}
    if _PERCENT.search(candidate.texts[0]) and ask.noun not in ("percent", "percentage", "percentages"):
        return True  # "which is 60% of the class" beside "18 girls": a share, neither a count nor a measure
    if ask.dimension == "count":
        return dimensions <= _MEASURES
    if None in dimensions:
        # "9 eggs" when money is asked: a count of things is not a measure.
        return dimensions == {None} and _object_key(candidate) is not None
    return ask.dimension not in dimensions


_MEASURES = frozenset({"time", "length", "mass", "volume", "money"})
_PERCENT = re.compile(r"%|\bper\s?cent\b", re.I)
_TRAILING_WORD = re.compile(r"([^\W\d_]+)\W*$")


def _dimension(text: str) -> str | None:
    if text.lstrip("-−").startswith(("$", "€", "£")):
        return "money"
    word = _TRAILING_WORD.search(text)
    return dimension_of(word.group(1)) if word else None


def _other_objects(candidates: list[Candidate], noun: str) -> list[Candidate]:
    """When one open candidate counts the asked things, open ones counting other things are set aside."""
    wanted = _unit_key(noun)
    objects = [_object_key(c) for c in candidates]
    matching = [i for i, c in enumerate(candidates) if c.set_aside is None and objects[i] == wanted]
    if len(matching) != 1:
        return candidates
    return [replace(c, set_aside="unit") if c.set_aside is None and objects[i] not in (None, wanted) else c
            for i, c in enumerate(candidates)]


def _other_units(candidates: list[Candidate], unit: str) -> list[Candidate]:
    """ "120 minutes. That is 240 minutes, i.e. 4 hours." when hours are asked: the one open candidate
    written in the asked unit answers; open ones only in other units of its dimension are set aside."""
    wanted = unit_of(unit)
    in_unit = [any(unit_of(_last_word(t)) == wanted for t in c.texts) for c in candidates]
    matching = [i for i, c in enumerate(candidates) if c.set_aside is None and in_unit[i] and c.standing != "premise"]
    if len(matching) != 1:
        return candidates
    return [replace(c, set_aside="unit") if c.set_aside is None and not in_unit[i] and _dimension(c.texts[0]) == wanted[0]
            else c for i, c in enumerate(candidates)]


def _last_word(text: str) -> str | None:
    word = _TRAILING_WORD.search(text)
    return word.group(1) if word else None


def _object_key(candidate: Candidate) -> object:
    word = _TRAILING_WORD.search(candidate.texts[0])
    if word is None or not re.search(r"\d\s*" + re.escape(word.group(1)) + r"\W*$", candidate.texts[0]):
        return None  # no word right after the number
    return _unit_key(word.group(1))


def _is_conversion_fact(text: str, candidate: Candidate) -> bool:
    """Whether the candidate is the "1 hour" of "60 minutes in 1 hour" or "1 hour has 60 minutes"."""
    one = _ONE_UNIT.fullmatch(candidate.texts[0])
    if one is None or unit_of(one.group("unit")) is None:
        return False
    start, end = candidate.span
    return bool(_CONVERSION_BEFORE.search(text, max(0, start - 40), start) or _CONVERSION_AFTER.match(text, end))


def _in_parentheses(text: str, start: int) -> bool:
    # Only a parenthesis: a trailing remark sentence ("This is 12/20 x 100% = 60% of the students.")
    # often restates the answer itself.
    line_start = text.rfind("\n", 0, start) + 1
    return _last_plain(text, "(", line_start, start) > _last_plain(text, ")", line_start, start)


def _last_plain(text: str, char: str, start: int, end: int) -> int:
    """The last `char` in text[start:end] that is not LaTeX's "\\(" or "\\)" (inline math), or -1."""
    found = text.rfind(char, start, end)
    while found > start and text[found - 1] == "\\":
        found = text.rfind(char, start, found)
    return found


def _in_question(candidate: Candidate, given: frozenset[Given]) -> bool:
    """Every reading of the candidate is a number the question gives, in a unit that agrees.

    "2 inches" in the question does not set aside "2 days", and a candidate that joins "2 inches" and
    "2 days" (the same value twice) is not set aside either.
    """
    for text in candidate.texts:
        mentions = find_mentions(text)
        if len(mentions) == 1 and mentions[0].kind in ("clock", "ratio"):
            if (Fraction(0), False, _clock_key(text)) not in given:
                return False
            continue
        unit = mentions[0].unit if mentions else None
        keys = _keys(text, unit)
        if not keys:
            return False
        value, percent, unit_key = next(iter(keys))
        if not any(v == value and p == percent and (unit_key is None or u is None or u == unit_key)
                   for v, p, u in given):
            return False
    return True


def _keys(text: str, unit: str | None) -> set[Given]:
    parsed = read_number(text)
    if parsed is None:
        return set()
    if text.lstrip("-−").startswith(("$", "€", "£", "¥", "₹")):
        unit = "$"  # "$25 shirt" is $25: the word after a price is what it buys, not its unit
    return {(parsed.value, parsed.percent, _unit_key(unit))}


def _clock_key(text: str) -> tuple[str, str]:
    return ("clock", re.sub(r"[\s.]", "", text.lower()))


def _unit_key(unit: str | None) -> object:
    """A key under which "dollars" and "$", "eggs" and "egg" agree; None for no unit."""
    if not unit:
        return None
    known = unit_of(unit)
    if known is not None:
        return known
    word = unit.lower()
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ses", "xes", "ches", "shes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word
