"""Finding the final answer in a free-form solution: explicit markers first, then the closing statement."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from orca_math.answers.closing import Candidate, read_closing
from orca_math.answers.mentions import find_mentions
from orca_math.answers.normalize import read_number
from orca_math.answers.setaside import question_recap, set_aside

RULES = ("final_answer_line", "gsm8k", "boxed", "the_answer_is", "answer_colon", "closing_statement", "none")
# How sure an extraction is, surest first. "none": nothing was found.
CONFIDENCE_LEVELS = ("marker", "sole", "guess", "none")


@dataclass(frozen=True, slots=True)
class Extraction:
    """The answer a solution text states, and how it was found.

    Attributes:
        value: the answer text (e.g. "$18", "3/4", "\\frac{1}{2}"), or None when nothing was found, or
            when the closing statement holds several candidates and none is stated as the answer. With
            several candidates of which one is left after the others are set aside, that one.
        rule: which rule found it, one of `RULES` ("none" when nothing was found).
        span: (start, end) offsets of `value` (or of the guessed candidate) in the original text, or None.
        confidence: "marker" (an explicit answer marker: `Final answer:`, `####`, `\\boxed{}`, "The answer
            is", `Answer:`), "sole" (no marker; the closing statement mentions one quantity, in digits,
            or one is left once the others are set aside: see `Candidate.set_aside`), "guess" (no
            marker; several quantities, see `candidates`, or one written only in words) or "none".
        candidates: the quantities the answer may be, each with its restatements ("90 minutes", "1.5
            hours") and, when it is plainly not the answer, why it was set aside; empty when `value` is
            one plain answer.
        picked: index in `candidates` of the one the wording singles out ("So 8 were eaten" over a
            number in an aside), or None.
    """

    value: str | None
    rule: str
    span: tuple[int, int] | None
    confidence: str = "none"
    candidates: tuple[Candidate, ...] = ()
    picked: int | None = None


_FINAL_ANSWER = re.compile(
    r"\bfinal\s+answer\s*[*_]*\s*(?:is\b\s*:?|[:=：])(?:[ \t*_]|\n)*(?P<value>[^\n]*)", re.IGNORECASE
)
_GSM8K = re.compile(r"^[ \t]*####[ \t]*(?P<value>[^\n]*)", re.MULTILINE)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_IS = re.compile(
    r"\banswer\s+(?:is|would\s+be|will\s+be|should\s+be)\b\s*:?(?:[ \t*_]|\n(?=[ \t*_$\d-]*[\d$]))*(?P<value>[^\n]*)",
    re.IGNORECASE,
)
_ANSWER_COLON = re.compile(r"\banswer\s*[*_]*\s*[:：](?:[ \t*_]|\n)*(?P<value>[^\n]*)", re.IGNORECASE)
# End of a sentence: a period (or ! ?) followed by space or the end, but not the period of "a.m." or "12.5".
_SENTENCE_END = re.compile(r"(?<![ap]\.[m])(?<!\b[ap])(?<!\b[ie]\.[eg])[.!?](?=\s|$)|\s+(?:because|since|so that)\s", re.I)
_TRIM_CHARS = " \t\r\n*_`.,;:!?\"'"
# A retraction withdraws the answer before it; a re-check only announces that another may follow.
_RETRACT = re.compile(
    r"\b(?:that(?:'s| is| was) (?:wrong|incorrect|not right|a mistake)|i made (?:a |an )?(?:mistake|error)|"
    r"oops|whoops|correction\s*:|scratch that|let me (?:correct|fix) (?:that|this|myself)|my mistake)",
    re.IGNORECASE,
)
_RECHECK = re.compile(
    r"(?:^|[.!?:]\s+|\n)[\s*_]*(?:wait|hold on|actually|on second thought)\b[,.!:]?"
    r"|\blet me (?:re-?check|recalculate|recompute|redo|double[- ]check|verify)\b",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
_EXPLANATION = re.compile(
    r"(?:^|(?<=[.!?])[ \t]+|\n)[ \t*_#]*(?:here(?:'s|’s|\s+is)\s+(?:how|why|(?:the|my)\s+(?:breakdown|working|reasoning|"
    r"calculation|explanation|math|work|steps?))|explanation\s*[:–—-]|reasoning\s*:|working\s*:|breakdown\s*:|"
    r"to\s+see\s+(?:this|why)|step[\s-]+by[\s-]+step\s*:|let\s+me\s+(?:explain|show\s+(?:how|why|the\s+steps?)|"
    r"walk\s+(?:you\s+)?through)|let(?:'s|’s|\s+us)\s+(?:break\s+(?:it|this)\s+down|walk\s+through)|"
    r"how\s+i\s+got\s+(?:it|there|this|that)|why\s*:|the\s+steps?\s*:)",
    re.I,
)
_PROSE_WORDS = re.compile(r"[^\W\d_]{2,}")
_LEADING_FILLER = re.compile(r"^(?:approximately|about|around|roughly|exactly|only|just|nearly|almost|~|=|\s)+", re.I)
# Marker values that are expressions go to compare_answers whole (math_verify), never split into numbers.
_EXPRESSION = re.compile(r"[\^√×÷*+]|\\(?!frac|dfrac|tfrac|text|\$|%)|\d[a-z](?![a-z])", re.I)
_LIST_GAP = re.compile(r"\s*(?:,|or|and|to|-|–|/|&|,\s*and|,\s*or)\s*", re.I)


def extract_final_answer(text: str, *, question: str | None = None) -> Extraction:
    """The final answer stated in `text`, found by the first rule that matches.

    Rules, in order: "final_answer_line" (`Final answer: X`, "The final answer is X"), "gsm8k" (`#### N`),
    "boxed" (the last `\\boxed{...}`, nested braces allowed), "the_answer_is" ("The answer is X"),
    "answer_colon" ("Answer: X"), "closing_statement" (no marker: the quantity the last sentence that
    mentions one is about), else "none". Within one rule the last occurrence wins, since solutions
    restate intermediate results first. An answer followed by a correction ("Wait, that's wrong: ...")
    gives way to what the correction says; a retraction with no new answer leaves nothing found.

    With `question` (the problem the reply answers), a closing statement's candidates that repeat one
    of the question's numbers are set aside (see `orca_math.answers.setaside`), as are numbers in an
    aside and counts of a part ("4 of them"). When exactly one candidate is left, and the wording does
    not single out a set-aside one, it is the reading, with confidence "sole"; `candidates` then still
    lists every candidate, with `set_aside` saying why (`picked` stays the wording's pick, or None).

    Raises:
        TypeError: if `text` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"extract_final_answer expects a str, got {type(text).__name__}")
    if question is not None and not isinstance(question, str):
        raise TypeError(f"question must be a str or None, got {type(question).__name__}")
    return _extract(text, 0, question or None)


def _extract(text: str, start: int, question: str | None = None) -> Extraction:
    for rule, finder in _FINDERS:
        span = finder(text, start)
        if span is None:
            continue
        begin, end = _clean_span(text, *span)
        if end <= begin:
            continue
        corrected = _after_correction(text, end, question)
        if corrected is not None:
            return corrected
        return _marker_extraction(text, rule, begin, end, question)
    # With no marker, the closing statement after the last correction is what the reply settles on.
    retraction = _last(_RETRACT, text, start)
    if retraction is not None:
        if read_closing(text, retraction.end()) is None:
            return Extraction(None, "none", None)
        start = retraction.end()
    return _closing_extraction(text, start, question)


def _after_correction(text: str, answer_end: int, question: str | None) -> Extraction | None:
    """What a correction after the answer says instead, or None when there is no correction."""
    cue = _last(_RETRACT, text, answer_end) or _last(_RECHECK, text, answer_end)
    if cue is None:
        return None
    corrected = _extract(text, cue.end(), question)
    if corrected.rule != "none":
        return corrected
    return Extraction(None, "none", None) if _RETRACT.search(text, answer_end) else None


def _last(pattern: re.Pattern[str], text: str, start: int) -> re.Match[str] | None:
    last = None
    for last in pattern.finditer(text, start):  # noqa: B007 - only the last one is wanted
        pass
    return last


def _marker_extraction(text: str, rule: str, begin: int, end: int, question: str | None) -> Extraction:
    if "," in text[begin:end] and not _DIGIT.search(text, begin, end):
        end = text.index(",", begin)  # "The answer is yes, she has enough money": the answer is "yes"
    value = _strip_inner_markdown(text[begin:end])
    if read_number(value) is not None or _EXPRESSION.search(value):
        return Extraction(value, rule, (begin, end), "marker")
    mentions = find_mentions(text[begin:end])
    if len(mentions) < 2:
        return Extraction(value, rule, (begin, end), "marker")
    lead = _LEADING_FILLER.match(text, begin)
    offset = lead.end() - begin if lead else 0
    first, second = mentions[0], mentions[1]
    if first.start == offset:
        # "The answer is 12 apples, which is 4 more than Tom": the number the marker names is the answer.
        if _LIST_GAP.fullmatch(text[begin + first.stop : begin + second.start]) and not _same(first, second):
            return Extraction(value, rule, (begin, end), "marker")  # "5 or 6", "3, 5": several answers
        reading = read_closing(text[begin : begin + first.stop] + _restatements(text, begin, mentions))
        texts = reading.candidates[0].texts if reading and len(reading.candidates) == 1 else (first.text,)
        span = (begin + first.start, begin + first.stop)
        return Extraction(first.text, rule, span, "marker", (Candidate(texts, span, "answer"),), 0)
    # "The answer is the sum of 48 and 24, which is 72": read it like a closing statement.
    reading = read_closing(text[:end], begin)
    if reading is None:
        return Extraction(value, rule, (begin, end), "marker")
    return _from_reading(text, rule, reading, "marker", question)


def _restatements(text: str, begin: int, mentions) -> str:
    """The text of mentions that directly restate the first one ("90 minutes (1.5 hours)")."""
    tail = ""
    for previous, mention in zip(mentions, mentions[1:], strict=False):
        gap = text[begin + previous.stop : begin + mention.start]
        if not re.fullmatch(r"\s*(?:,\s*)?(?:or|i\.?e\.?,?|that\s+is,?|which\s+is|=|\()?\s*(?:about|approximately)?\s*\(?\s*", gap, re.I):
            break
        tail += gap + text[begin + mention.start : begin + mention.stop]
    return tail


def _same(first, second) -> bool:
    a, b = read_number(first.text), read_number(second.text)
    return a is not None and b is not None and a.value == b.value


def _closing_extraction(text: str, start: int, question: str | None) -> Extraction:
    # "Tommy caught 14 fish. Here's why: ...": the statement before an explanation is the answer.
    opener = _EXPLANATION.search(text, start)
    end = opener.start() if opener is not None and _DIGIT.search(text, start, opener.start()) else len(text)
    recap = question_recap(question) if question else None
    reading = read_closing(text[:end], start, recap)
    if reading is None:
        return Extraction(None, "none", None)
    return _from_reading(text, "closing_statement", reading, "sole", question)


def _from_reading(text: str, rule: str, reading, sole_confidence: str, question: str | None) -> Extraction:
    candidates, picked = reading.candidates, reading.picked
    if len(candidates) == 1:
        only = candidates[0]
        extra = candidates if len(only.texts) > 1 else ()
        # Prose uses number words loosely ("one of them", "at first"): one bare number word is a guess;
        # words the sentence states with a unit, or several words ("seventy-two clips"), are not.
        confidence = sole_confidence if _in_digits(only) or _stated_in_words(only, text) else "guess"
        return Extraction(only.texts[0], rule, only.span, confidence, extra, 0 if extra else None)
    candidates = set_aside(text, candidates, question)
    if picked is not None and candidates[picked].set_aside == "unit":
        picked = None  # the wording singles out a quantity the question does not ask for
    left = [i for i, candidate in enumerate(candidates) if candidate.set_aside is None]
    if len(left) == 1:
        only = candidates[left[0]]
        # Sure only when the wording does not single out a set-aside candidate instead ("If one pen
        # costs $7, ..., so 5 pens cost $35" against a question that gives $7), the one left is in
        # digits, and its wording does not make it an input itself ("of the 100 guests").
        if picked in (None, left[0]) and (_in_digits(only) or _stated_in_words(only, text)) and only.standing != "premise":
            return Extraction(only.texts[0], rule, only.span, "sole", candidates, picked)
    span = candidates[picked].span if picked is not None else None
    return Extraction(None, rule, span, "guess", candidates, picked)


def _stated_in_words(candidate: Candidate, text: str) -> bool:
    """A quantity in words that the sentence states as its result: after "=" ("12 + 6 = eighteen"), or
    with a unit or in several words ("leaves two and three-eighths cups", "is twenty-one"): not loose prose."""
    if text[max(0, candidate.span[0] - 8) : candidate.span[0]].rstrip().endswith("="):
        return True
    return candidate.standing in ("result", "answer") and len(_WORDS.findall(candidate.texts[0].lower())) > 1


_WORDS = re.compile(r"[a-z]+")


def _in_digits(candidate: Candidate) -> bool:
    return any(ch.isdigit() for ch in "".join(candidate.texts))


# ---- the marker rules ------------------------------------------------------------------------------------


def _last_group(pattern: re.Pattern[str]) -> Callable[[str, int], tuple[int, int] | None]:
    def find(text: str, start: int) -> tuple[int, int] | None:
        last = None
        for match in pattern.finditer(text, start):
            value = match.group("value").strip(_TRIM_CHARS)
            if value and not _is_prose(value):
                last = match
        return last.span("value") if last else None

    return find


def _is_prose(value: str) -> bool:
    """True for "Let's think step by step." after `Answer:`: a sentence with no number is not an answer."""
    if _DIGIT.search(value, 0, 24):  # the common case, "#### 72", "Final answer: $18": no need to look further
        return False
    sentence = re.split(r"[,;]", _SENTENCE_END.split(value, 1)[0], maxsplit=1)[0]
    return not _DIGIT.search(sentence) and len(_PROSE_WORDS.findall(sentence)) > 3


def _find_boxed(text: str, start: int = 0) -> tuple[int, int] | None:
    starts = [m.end() for m in _BOXED.finditer(text, start)]
    for begin in reversed(starts):
        end = _matching_brace(text, begin)
        if end is not None and text[begin:end].strip():
            return begin, end
    return None


def _matching_brace(text: str, start: int) -> int | None:
    """Index of the `}` closing the brace opened just before `start`, or None if unbalanced."""
    depth = 1
    for index in range(start, len(text)):
        char = text[index]
        if char == "{" and text[index - 1] != "\\":
            depth += 1
        elif char == "}" and text[index - 1] != "\\":
            depth -= 1
            if depth == 0:
                return index
    return None


_FINDERS: tuple[tuple[str, Callable[[str, int], tuple[int, int] | None]], ...] = (
    ("final_answer_line", _last_group(_FINAL_ANSWER)),
    ("gsm8k", _last_group(_GSM8K)),
    ("boxed", _find_boxed),
    ("the_answer_is", _last_group(_ANSWER_IS)),
    ("answer_colon", _last_group(_ANSWER_COLON)),
)


def _clean_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Narrow a found answer to its value: inside \\boxed{}, before the sentence ends, after the last '='."""
    value = text[start:end]
    boxed = _find_boxed(value)
    if boxed is not None:
        start, end = start + boxed[0], start + boxed[1]
        value = text[start:end]
    sentence_end = _SENTENCE_END.search(value)
    if sentence_end is not None and sentence_end.start() > 0:
        end = start + sentence_end.start()
        value = text[start:end]
    # GSM8K calculator notes "<<15*8=120>>120": the answer follows the note.
    note_end = value.rfind(">>")
    if note_end >= 0 and "<<" in value[:note_end]:
        start += note_end + 2
        value = text[start:end]
    # "5 + 3 = 8": the answer is what the last '=' gives (not inside LaTeX like \frac{a}{b}=...).
    equals = max(value.rfind("="), value.rfind("≈"))
    if equals >= 0 and value[equals + 1 :].strip(_TRIM_CHARS):
        start += equals + 1
    while start < end and text[start] in _TRIM_CHARS and not text[start : start + 2].lstrip(".").isdigit():
        start += 1
    while end > start and text[end - 1] in _TRIM_CHARS:
        end -= 1
    return start, end


def _strip_inner_markdown(value: str) -> str:
    return value.replace("**", "").replace("__", "").strip()
