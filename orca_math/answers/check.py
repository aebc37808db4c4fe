"""Checking a whole response against a gold answer: extract, then compare, with a confidence floor."""

from __future__ import annotations

import re
from dataclasses import replace
from fractions import Fraction

from orca_math.answers.ask import read_ask
from orca_math.answers.closing import Candidate, sentences
from orca_math.answers.compare import Comparison, Rounding, _check_gold, _read_colon_form, compare_answers
from orca_math.answers.extract import CONFIDENCE_LEVELS, Extraction, extract_final_answer
from orca_math.answers.hedge import MAY_JOIN_VALUES, find_hedge
from orca_math.answers.normalize import read_number
from orca_math.answers.setaside import given_by


def check_answer(
    gold: str,
    response: str,
    *,
    question: str | None = None,
    min_confidence: str = "guess",
    rounding: Rounding = "both",
    rel_tol: float = 1e-4,
    abs_tol: float = 1e-6,
) -> Comparison:
    """Extract the final answer from a whole `response` and compare it with `gold`.

    When the response has no answer marker and its closing statement mentions several quantities
    ("Only two are left, so 8 were eaten."), the verdict is:
    - "equal" when the gold equals the one the wording singles out, and no other;
    - "not_equal" when none of them equals the gold (an input restated from the question, such as "the
      80 students", does not count);
    - "cant_tell" otherwise: the gold is one of them, but not clearly the answer.
    Such verdicts have confidence "guess".

    Candidates that are plainly not the answer are set aside first: a number the `question` gives, a
    number in an aside, a count of a part ("4 of them"), a quantity the question does not ask for
    ("60 miles" when hours are asked). When one candidate is left and no set-aside one equals the
    gold, the verdict rests on that one alone, with confidence "sole" ("Out of 50 students, 15 walk,
    so 35 take the bus." for a question that gives 50 and 15). Sentences after the answer that only
    look back (a recap of the question's numbers, "For comparison, ...", a check, a counterfactual,
    the parts that an answer stated first is made of) are skipped.

    A final statement that gives several answers ("6 or 7 boxes", "Answer: 85-90", "9 (or 1 under
    the other reading)") is "not_equal", method "hedge", reason "several answers: ...", even when the
    gold is one of them. With `question`, a bare gold is read in the unit asked ("how many minutes"),
    so "1 hour 35 minutes" decides against 95.

    Args:
        gold: the reference answer ("72", "$18.50", "3/4"), not a whole solution.
        response: a model's free-form solution text.
        question: the problem the response answers, or None; its numbers are set aside among the
            candidates of a closing statement, and its ask (unit, object) is read (see
            `orca_math.answers.ask`).
        min_confidence: the least sure extraction that may decide: "guess" (default: every extraction
            decides), "sole" (guesses among several numbers become "cant_tell"), or "marker" (only an
            explicit answer marker decides).
        rounding: passed to `compare_answers` ("both", "reply" or "none").
        rel_tol: passed to `compare_answers`: relative tolerance for unrounded values.
        abs_tol: passed to `compare_answers`: absolute tolerance for unrounded values near zero.

    Returns:
        The `Comparison`, with `rule` (the extraction rule) and `confidence` set.

    Raises:
        TypeError: if `gold`, `response` or a given `question` is not a string.
        ValueError: if `gold` is empty or `min_confidence` is not a confidence level.
    """
    if not isinstance(response, str):
        raise TypeError(f"response must be a str, got {type(response).__name__}")
    if min_confidence not in CONFIDENCE_LEVELS[:-1]:
        raise ValueError(f"min_confidence must be one of marker, sole, guess, got {min_confidence!r}")
    _check_gold(gold)
    tolerance = {"rounding": rounding, "rel_tol": rel_tol, "abs_tol": abs_tol}
    extraction = extract_final_answer(response, question=question)
    gold = _in_asked_unit(gold, question)
    if extraction.rule == "none":
        return Comparison("cant_tell", "no final answer found in the response", "none", None, None, "none", "none")
    hedge = _hedge(response, extraction, question)
    if hedge is not None:
        return hedge
    if extraction.candidates:
        comparison, confidence = _judge_candidates(gold, extraction, tolerance)
    else:
        comparison, confidence = compare_answers(gold, extraction.value, **tolerance), extraction.confidence
    # Built directly: dataclasses.replace costs a tenth of a plain verdict.
    comparison = Comparison(
        comparison.result, comparison.reason, comparison.method, comparison.gold_value,
        comparison.predicted_value, extraction.rule, confidence,
    )
    if comparison.result != "cant_tell" and CONFIDENCE_LEVELS.index(confidence) > CONFIDENCE_LEVELS.index(
        min_confidence
    ):
        reason = (
            f"{comparison.result} only as a {confidence} ({_sentence(comparison.reason)}), and "
            f"min_confidence={min_confidence!r}"
        )
        return replace(comparison, result="cant_tell", reason=reason)
    return comparison


def _in_asked_unit(gold: str, question: str | None) -> str:
    """A bare gold in the unit the question asks for ("95" -> "95 minutes"), so durations and lengths
    given in another unit, or in two ("1 hour 35 minutes"), compare in that unit."""
    if not question or not _BARE_NUMBER.fullmatch(gold):
        return gold
    ask = read_ask(question)
    # Money only when cents are asked for ("how much will each pump cost, in cents?"): a bare gold is
    # otherwise read as dollars already.
    if ask.unit is None or (ask.dimension not in ("time", "length", "mass", "volume") and ask.unit != "cents"):
        return gold
    return f"{gold.strip()} {ask.unit}"


_BARE_NUMBER = re.compile(r"\s*-?\d+(?:\.\d+)?(?:/\d+)?\s*")


def _hedge(response: str, extraction: Extraction, question: str | None) -> Comparison | None:
    """A `not_equal` verdict when the statement that gives the answer gives two ("6 or 7 boxes")."""
    span = extraction.span
    if extraction.candidates and (extraction.rule == "closing_statement" or span is None):
        # The last sentence of the closing statement; also a marker's value read like one ("The
        # answer is roughly 85-90 cookies"), which has no span of its own.
        span = max(c.span for c in extraction.candidates)
    if span is None:
        return None
    # The common case, cheaply: nothing on the answer's line could join two values (a statement never
    # spans lines).
    # After a marker only the value and what follows it can offer a second answer ("#### 72").
    line_end = response.find("\n", span[1])
    line_start = span[0] if extraction.confidence == "marker" else response.rfind("\n", 0, span[0]) + 1
    if not MAY_JOIN_VALUES.search(response, line_start, len(response) if line_end < 0 else line_end):
        return None
    statement = _statement_around(response, span)
    given = given_by(question) if question else None
    found = None
    if extraction.confidence == "marker" and extraction.value:
        found = find_hedge(extraction.value, given, whole_value=True)  # "Answer: 85-90"
    found = found or find_hedge(statement, given)
    if found is None:
        return None
    reason = f"several answers: the final statement gives {found[0]} and {found[1]} ({statement.strip()[:80]!r})"
    confidence = "marker" if extraction.confidence == "marker" else "sole"
    return Comparison("not_equal", reason, "hedge", None, None, extraction.rule, confidence)


def _statement_around(text: str, span: tuple[int, int]) -> str:
    """The sentence or line of `text` that holds `span`, with the one before when it opens with "Or"
    ("There are 40 chairs. Or 42, if the teacher's chairs count.")."""
    window = max(0, span[0] - 400)
    before = None
    for start, end in sentences(text, window):
        if start <= span[0] < end:
            if before is not None and _OPENS_WITH_OR.match(text, start):
                start = before
            return text[start:max(end, span[1])]
        before = start
    return text[span[0] : span[1]]


_OPENS_WITH_OR = re.compile(r"[\s*_]*or\b", re.I)


def _judge_candidates(gold: str, extraction: Extraction, tolerance: dict) -> tuple[Comparison, str]:
    """The verdict on a reading with candidates, and how sure it is ("sole" or "guess")."""
    verdicts = []
    for candidate in extraction.candidates:
        readings = [compare_answers(gold, text, **tolerance) for text in candidate.texts]
        equal = next((r for r in readings if r.result == "equal"), None)
        if equal is not None:
            verdicts.append(equal)
        elif all(r.result == "not_equal" for r in readings):
            verdicts.append(readings[0])
        else:
            verdicts.append(next(r for r in readings if r.result == "cant_tell"))
    if len(verdicts) == 1:
        only = verdicts[0]
        texts = extraction.candidates[0].texts
        if only.result == "equal" and len(texts) > 1:
            only = replace(only, reason=f"{only.reason}; the reply restates it as {' and '.join(texts)}")
        return only, extraction.confidence
    if extraction.confidence == "sole":
        sole = _judge_the_one_left(gold, extraction, verdicts)
        if sole is not None:
            return sole, "sole"
    if not any(_may_be_the_gold(gold, c, v) for c, v in zip(extraction.candidates, verdicts, strict=True)):
        # Whichever candidate is the answer, it is not the gold: the verdict rests on no pick.
        shown = ", ".join(c.texts[0] for c in extraction.candidates)
        first = verdicts[0]
        reason = f"none of the closing statement's candidate answers ({shown}) equals the gold"
        return Comparison("not_equal", reason, first.method, first.gold_value, None), "sole"
    return _judge_several(extraction, verdicts), "guess"


def _judge_the_one_left(gold: str, extraction: Extraction, verdicts: list[Comparison]) -> Comparison | None:
    """The verdict on the one candidate not set aside, or None when a set-aside one may be the gold."""
    left = next(i for i, c in enumerate(extraction.candidates) if c.set_aside is None)
    for i, (candidate, verdict) in enumerate(zip(extraction.candidates, verdicts, strict=True)):
        # The question's own "4 hours" beside a gold of 240 matches only as minutes: a coincidence. So
        # is "9 stickers" beside "31 marbles" when marbles are asked.
        coincidence = (candidate.set_aside == "question" and verdict.method == "unit") or candidate.set_aside == "unit"
        # When the one left equals the gold, a set-aside one that does too only restates it.
        if i != left and _may_be_the_gold(gold, candidate, verdict) and not coincidence and verdicts[left].result != "equal":
            return None  # "how many are left" may answer with a number the question gave: no sure reading
    aside = ", ".join(f"{c.texts[0]} ({c.set_aside})" for c in extraction.candidates if c.set_aside)
    verdict = verdicts[left]
    return replace(verdict, reason=f"{_sentence(verdict.reason)}; set aside: {aside}")


def _may_be_the_gold(gold: str, candidate: Candidate, verdict: Comparison) -> bool:
    """Whether a candidate's verdict leaves open that it is the gold: equal, or unsure in a way that may be."""
    if verdict.result == "equal":
        return True
    if verdict.result != "cant_tell":
        return False
    if verdict.reason.startswith("one answer is a time or ratio"):
        return any(_colon_form_may_mean(gold, text) for text in candidate.texts)
    return True


def _colon_form_may_mean(gold: str, text: str) -> bool:
    """Whether a clock time or ratio may be what a plain-number gold means.

    GSM8K writes a clock time as its hour: "2:00 pm is the latest she can start" answers a gold of 2
    (or 14). A ratio "3:2" may answer 1.5. Any other time or ratio is not that number.
    """
    form, number = _read_colon_form(text), read_number(gold)
    if form is None or number is None:
        return True  # the gold is the time, or the form is not read: unsure either way
    first, second, _, _ = form
    readings = {Fraction(first), Fraction(first % 12), Fraction(first % 12 + 12), first + Fraction(second, 60)}
    if second:
        readings.add(Fraction(first, second))
    return number.value in readings


def _judge_several(extraction: Extraction, verdicts: list[Comparison]) -> Comparison:
    shown = ", ".join(c.texts[0] for c in extraction.candidates)
    picked = extraction.picked
    matches, unsure = [], []
    for i, (candidate, verdict) in enumerate(zip(extraction.candidates, verdicts, strict=True)):
        if i != picked and _no_match(candidate, verdict):
            continue
        if verdict.result == "equal":
            matches.append(i)
        elif verdict.result == "cant_tell":
            unsure.append(i)
    if picked is not None and matches == [picked]:
        text = extraction.candidates[picked].texts[0]
        reason = f"{text} equals the gold, and the wording singles it out among {shown}"
        return replace(verdicts[picked], reason=reason)
    if picked in matches and not unsure and len({verdicts[i].predicted_value for i in matches}) == 1:
        # "95 minutes remain, or 1 hour and 35 minutes": every candidate that equals the gold is one
        # quantity, and the wording singles it out.
        texts = " and ".join(extraction.candidates[i].texts[0] for i in matches)
        return replace(verdicts[picked], reason=f"{texts} are one quantity, equal to the gold; the wording singles it out")
    if not matches and not unsure:
        first = verdicts[0]
        reason = f"none of the closing statement's candidate answers ({shown}) equals the gold"
        return Comparison("not_equal", reason, first.method, first.gold_value, None)
    reason = (
        f"the closing statement holds several numbers ({shown}), and the gold is one of them but not "
        "clearly the answer"
    )
    return Comparison("cant_tell", reason, "none", verdicts[0].gold_value, None)


def _no_match(candidate: Candidate, verdict: Comparison) -> bool:
    """Whether a candidate other than the picked one is ruled out as the reply's answer.

    - "4 hours" beside a gold of 240 matches only as minutes: a coincidence, not a match.
    - A clock time or ratio against a plain number cannot be the same answer.
    - An input ("the 80 students", "after giving away 9") equal to the gold is the question's number
      restated, not the reply's answer; except a duration ("after 3 years, ..." may answer "how long").
      A number in an aside is stated by the reply, so it stays a possible match.
    """
    if verdict.method == "unit" or verdict.reason.startswith("one answer is a time or ratio"):
        return True
    if candidate.standing != "premise" or verdict.result != "equal":
        return False
    return not _DURATION.search(candidate.texts[0])


_DURATION = re.compile(r"\b(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?)\b", re.I)


def _sentence(reason: str) -> str:
    return reason.rstrip(".")
