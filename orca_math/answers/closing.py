"""Reading the answer from the closing statement of a reply that has no explicit answer marker.

"So, Natalia sold 72 clips altogether." has no "Final answer:" line; its answer is the number the last
sentence that mentions a number is about. This module finds that sentence (stepping back over a trailing
aside such as "(He gave away 9.)" or a remark such as "That is 24 more than in May."), lists its
quantities, drops what is plainly not the answer (the operands of "48 + 24 = 72", an operand restated
elsewhere), joins restatements ("90 minutes, or 1.5 hours"), and rates each remaining quantity by its
context (see `orca_math.answers.rating`). It never decides on its own: `check_answer` compares the
candidates with the gold.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from orca_math.answers.mentions import Mention, find_mentions
from orca_math.answers.normalize import read_number
from orca_math.answers.rating import (
    CONCLUSION,
    RESTATE_GAP,
    STANDINGS,
    chains,
    inputs,
    links,
    rate_sentence,
    restates,
    value_of,
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One possible answer in a closing statement, with the other ways the reply wrote the same quantity.

    Attributes:
        texts: the readings, first as written first ("90 minutes", "1.5 hours").
        span: (start, end) of the first reading in the reply.
        standing: "result", "answer", "neutral", "weak_premise", "premise" or "aside" (see
            `orca_math.answers.rating`).
        set_aside: why the candidate is plainly not the answer, or None: "question" (a number the
            question gives), "aside" (in parentheses or a trailing remark) or "part" ("4 of them");
            see `orca_math.answers.setaside`.
    """

    texts: tuple[str, ...]
    span: tuple[int, int]
    standing: str
    set_aside: str | None = None


@dataclass(frozen=True, slots=True)
class ClosingReading:
    """The candidates of a closing statement and which one, if any, its wording singles out."""

    candidates: tuple[Candidate, ...]
    picked: int | None


# ---- sentences -----------------------------------------------------------------------------------------

_BOUNDARY = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)|\n")
_ABBREVIATIONS = frozenset("a.m p.m e.g i.e mr mrs ms dr vs approx etc st no min hr hrs ft oz lb lbs sq yd mi sec".split())
_NEVER_SPLIT = frozenset("mr mrs ms dr e.g i.e vs approx".split())


def sentences(text: str, start: int = 0) -> list[tuple[int, int]]:
    """(start, end) of each sentence or line of `text[start:]`, with a.m., e.g., 3.5 kept inside."""
    spans = []
    begin = start
    for match in _BOUNDARY.finditer(text, start):
        if match.group() != "\n":
            word = re.search(r"([\w.]+?)\.*$", text[max(begin, match.start() - 12) : match.start() + 1])
            word_text = word.group(1).lower().rstrip(".") if word else ""
            if word_text in _NEVER_SPLIT:
                continue
            if word_text in _ABBREVIATIONS and not re.match(r"\s+[A-Z(]", text[match.end() : match.end() + 3]):
                continue
        if text[begin : match.end()].strip():
            spans.append((begin, match.end()))
        begin = match.end()
    if text[begin:].strip():
        spans.append((begin, len(text)))
    return spans


# ---- the closing region ----------------------------------------------------------------------------------

_REMARK_OPENER = re.compile(
    r"^[\s*_>-]*(?:\(|\[|that is\b|that's\b|this is\b|i\.e\.|note\b|check\b|checking\b|verification\b|"
    r"as a check\b|to check\b|to verify\b|recall\b|remember\b)",
    re.I,
)
def read_closing(text: str, start: int = 0, recap: Recap | None = None) -> ClosingReading | None:
    """The candidates of the closing statement of `text[start:]`, or None when it mentions no quantity.

    Sentences after the answer that only look back are skipped: an aside or recap that says so ("For
    comparison, ...", "Recall that ...", "We started from ...", "The problem says: ..."), and, with
    `recap`, a sentence that `recap` finds only restates the question ("She began with 50, lost 12
    and gave away 7.").
    """
    masked = _mask_calculator_notes(text)
    # The closing statement is near the end: split only the tail first (its first piece may be cut).
    window = max(start, len(masked) - _TAIL_CHARS)
    found = _closing_sentences(masked, sentences(masked, window)[1:] if window > start else sentences(masked, start),
                               recap)
    if not found and window > start:
        found = _closing_sentences(masked, sentences(masked, start), recap)
    if not found:
        return None
    only_one = len(found) == 1 and len(found[0][1]) == 1
    if only_one and not _OPENS_WITH_PREMISE.match(masked, found[0][0][0]):  # one quantity: nothing to weigh
        only = found[0][1][0]
        return ClosingReading((Candidate((masked[only.start : only.stop],), _span(masked, text, only), "answer"),), 0)
    rated: list[tuple[Mention, str]] = []
    for index, (span, mentions) in enumerate(reversed(found)):
        aside = len(found) == 2 and index == 1
        rated.extend(rate_sentence(masked, span, mentions, aside))
    if len(found) == 1 and rated and all(standing in _INPUTS for _, standing in rated):
        # "... = 21600 square inches. Since each tile is 1 square inch, this is also the number of
        # tiles.": a last sentence of inputs alone explains; the answer may be in the one before.
        before = _closing_sentences(masked, [s for s in sentences(masked, max(start, found[0][0][0] - _TAIL_CHARS))
                                             if s[1] <= found[0][0][0]][1:])
        if before:
            span, mentions = before[0]
            rated = rate_sentence(masked, span, mentions, False) + rated
    if not rated:
        return None
    candidates = _group(masked, text, rated)
    if len(candidates) > 1:
        candidates = _demote_earlier_operands(masked, start, found[-1][0][0], candidates)
    return ClosingReading(tuple(candidates), _pick(candidates))


_TAIL_CHARS = 800
_INPUTS = ("weak_premise", "premise", "aside")
_OPENS_WITH_PREMISE = re.compile(r"[\s*_>-]*(?:since|because|as|if|when|given|note)\b", re.I)


def _closing_sentences(masked: str, spans: list[tuple[int, int]],
                       recap: Recap | None = None) -> list[tuple[tuple[int, int], list[Mention]]]:
    """The last sentence that mentions a quantity, and the one before it when the last is an aside."""
    found: list[tuple[tuple[int, int], list[Mention]]] = []  # last sentence first
    skipped = 0
    for index in range(len(spans) - 1, -1, -1):
        span = spans[index]
        mentions = [m for m in _shifted(find_mentions(masked[span[0] : span[1]]), span[0]) if m.kind != "year"]
        if mentions and not found and skipped < _MAX_SKIPPED and index > 0 and _looks_back(masked, span, mentions, recap):
            skipped += 1
            continue
        if mentions:
            found.append((span, mentions))
            if len(found) == 2 or not _is_remark(masked[span[0] : span[1]]):
                break
    if len(found) == 2 and not _is_remark(masked[found[0][0][0] : found[0][0][1]]):
        found = found[:1]
    return found


_EARLIER_SENTENCES = 6
# Only a sentence with an operator before a number can hold an equation worth reading.
_HAS_EQUATION = re.compile(r"[-+*/×÷x]\s*\$?\d")


def _demote_earlier_operands(text: str, start: int, region_start: int, candidates: list[Candidate]) -> list[Candidate]:
    """A number that was only ever an input of an earlier equation ("12 + 5 = 17") is likely a premise here.

    Only likely: "17 + 18 + 19 = 54. The largest is 19." answers with an earlier input.
    """
    operands: set[Fraction] = set()
    results: set[Fraction] = set()
    for span in sentences(text, start)[-_EARLIER_SENTENCES - 2 :]:
        if span[1] > region_start:
            break
        if not _HAS_EQUATION.search(text, span[0], span[1]):
            continue
        mentions = [m for m in _shifted(find_mentions(text[span[0] : span[1]]), span[0]) if m.kind != "year"]
        chain_operands, chain_results = chains(mentions, links(text, mentions))
        operands.update(inputs(mentions, chain_operands))
        results.update(value_of(mentions[i]) for i in chain_results)
    given = operands - results - {None}
    if not given:
        return candidates
    demoted = []
    for candidate in candidates:
        parsed = read_number(candidate.texts[0])
        if parsed is not None and parsed.value in given and candidate.standing in ("result", "answer", "neutral"):
            candidate = Candidate(candidate.texts, candidate.span, "weak_premise")
        demoted.append(candidate)
    return demoted


_MAX_SKIPPED = 2
# A sentence after the answer that says it only looks back or aside: never the answer.
_LOOKS_BACK = re.compile(
    r"^[\s*_>(-]*(?:for\s+comparison|by\s+comparison|in\s+comparison|compared\s+with|(?:as\s+a\s+)?side\s+note|"
    r"recall(?:\s+that)?|to\s+recap|(?:to\s+|let'?s\s+|let\s+us\s+)?(?:double[-\s]?check|verify|check\s+(?:this|that|it|our\s+work))\b|"
    r"(?:as\s+a\s+|sanity\s+)check\b|check(?:ing)?\s*:|verification\s*:|in\s+recap|recap\s*:|we\s+(?:started|began)\s+(?:from|with)|we\s+were\s+given|"
    r"(?:this|that)\s+used|the\s+(?:problem|question)\s+(?:says|said|gave|gives|states|stated|tells)|"
    r"as\s+(?:given|stated)(?:\s+in\s+the\s+(?:problem|question))?\b|note\s+that\b(?=[^.]*\bwould\b)|"
    r"by\s+the\s+way|incidentally|just\s+for\s+reference|for\s+reference|fun\s+fact|interestingly|as\s+an\s+aside)",
    re.I,
)
# "Without the coupon it would have been $140", "Had they bought only adult tickets, it would have been
# $60", "(If she had also given away 7, she would have 31.)", "If it were full, it would hold 50 liters"
# (not "If there were 10 students, 310 would join": a condition): what did not happen. Not skipped when the
# question itself asks what would happen.
_COUNTERFACTUAL = re.compile(
    r"^[\s*_>(-]*(?:without|otherwise|had\s+(?:she|he|they|it|we|you|i)|if\b[^.!?\n]*\b(?:had|(?:it|he|she|i|this|that)\s+were))\b[^.!?\n]*\bwould\b",
    re.I,
)
# "..., though only one day was asked about", "..., which was not asked": it says it answers something else.
_NOT_ASKED = re.compile(
    r"\bonly\b[^.!?\n]*\b(?:was|were|is|are)\s+asked\b|\b(?:was|were|is|are)\s*(?:n[o']t|never)\s+asked\b|"
    r"\bnot\s+what\s+(?:was|is)\s+asked\b",
    re.I,
)
# (sentence, its mentions, the reply before it) -> whether the sentence only restates the question.
Recap = Callable[[str, list[Mention], str], bool]


def _looks_back(masked: str, span: tuple[int, int], mentions: list[Mention], recap: Recap | None) -> bool:
    sentence = masked[span[0] : span[1]]
    if _LOOKS_BACK.match(sentence) or _NOT_ASKED.search(sentence):
        return True
    if _COUNTERFACTUAL.match(sentence) and not getattr(recap, "hypothetical", False):
        return True
    return recap is not None and recap(sentence, mentions, masked[max(0, span[0] - _TAIL_CHARS) : span[0]])


def _is_remark(sentence: str) -> bool:
    # "That's wrong: ..." opens a correction, not a remark about the answer before it.
    return bool(_REMARK_OPENER.match(sentence)) and not CONCLUSION.search(sentence) and not _CORRECTION.search(sentence)


_CORRECTION = re.compile(r"(?:wrong|incorrect|mistake|error|not right|oops)", re.I)


def _mask_calculator_notes(text: str) -> str:
    # GSM8K's "<<48/2=24>>": blanked out, keeping offsets, since the result is written right after it.
    # A currency sign before the note moves to the result: "= $<<4*5=20>>20" reads "=        $20".
    # Bold marks are blanked too: "1000+1600=**2600**" is an equation like "1000+1600=2600".
    if "**" in text or "__" in text:
        text = _EMPHASIS.sub(lambda m: " " * len(m.group()), text)
    if "\\$" in text:  # LaTeX money, "= $\$$71$": read as "=    $71 "
        text = _LATEX_DOLLAR.sub(lambda m: " " * (len(m.group()) - 1) + "$", text)
    if "\\" in text:  # inline LaTeX, "\( 21 \div 3 = 7 \)": read as "   21  /   3 = 7   "
        text = _LATEX_MATH.sub(lambda m: _LATEX_PLAIN[m.group()].center(len(m.group())), text)
    if "<<" not in text:
        return text
    return _CALCULATOR_NOTE.sub(lambda m: " " * (len(m.group()) - len(m.group(1))) + m.group(1), text)


_EMPHASIS = re.compile(r"\*\*|__")
_LATEX_PLAIN = {"\\(": "", "\\)": "", "\\[": "", "\\]": "", "\\times": "*", "\\cdot": "*", "\\div": "/",
                "\\$": "$", "\\%": "%", "\\,": ""}
_LATEX_MATH = re.compile("|".join(re.escape(token) for token in sorted(_LATEX_PLAIN, key=len, reverse=True)))
_LATEX_DOLLAR = re.compile(r"\$?\\\$\$?(?=\s?\d)")


_CALCULATOR_NOTE = re.compile(r"(\$?)<<[^<>\n]*>>")


def _shifted(mentions: list[Mention], offset: int) -> list[Mention]:
    return [Mention(m.start + offset, m.end + offset, m.stop + offset, m.text, m.unit, m.kind) for m in mentions]


# ---- candidates ----------------------------------------------------------------------------------------


def _group(masked: str, original: str, rated: list[tuple[Mention, str]]) -> list[Candidate]:
    """One candidate per quantity: restatements and repeats of one value are joined."""
    groups: list[list[tuple[Mention, str]]] = []
    for mention, standing in rated:
        home = None
        for group in groups:
            last = group[-1][0]
            same_value = value_of(mention) is not None and value_of(mention) == value_of(last)
            same_text = mention.kind in ("clock", "ratio", "compound") and mention.text == last.text
            joined = last.stop <= mention.start and RESTATE_GAP.fullmatch(masked[last.stop : mention.start])
            if same_value or same_text or (joined and restates(last, mention)):
                home = group
                break
        if home is None:
            groups.append([(mention, standing)])
        else:
            home.append((mention, standing))
    candidates = []
    for group in groups:
        texts = tuple(dict.fromkeys(masked[m.start : m.stop] for m, _ in group))
        best = min((standing for _, standing in group), key=STANDINGS.index)
        candidates.append(Candidate(texts, _span(masked, original, group[0][0]), best))
    return candidates


def _span(masked: str, original: str, mention: Mention) -> tuple[int, int]:
    """Where `mention` is in the reply: a "$" moved out of a calculator note is left out."""
    start = mention.start
    if masked[start] == "$" and original[start] != "$":
        start += 1
    return start, mention.stop


def _pick(candidates: list[Candidate]) -> int | None:
    """The one candidate whose standing beats all others, or None when two share the best standing."""
    if len(candidates) == 1:
        return 0
    best = min(STANDINGS.index(c.standing) for c in candidates)
    top = [i for i, c in enumerate(candidates) if STANDINGS.index(c.standing) == best]
    return top[0] if len(top) == 1 and STANDINGS[best] not in ("premise", "aside") else None
