"""Finding the final answer in a free-form solution, by a fixed list of rules tried in order."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

RULES = ("final_answer_line", "gsm8k", "boxed", "the_answer_is", "answer_colon", "last_number", "none")


@dataclass(frozen=True, slots=True)
class Extraction:
    """The answer a solution text states, and how it was found.

    Attributes:
        value: the answer text (e.g. "$18", "3/4", "\\frac{1}{2}"), or None when nothing was found.
        rule: which rule found it, one of `RULES` ("none" when nothing was found).
        span: (start, end) offsets of `value` in the original text, or None.
    """

    value: str | None
    rule: str
    span: tuple[int, int] | None


_FINAL_ANSWER = re.compile(
    r"\bfinal\s+answer\s*[*_]*\s*(?:is\b\s*:?|[:=：])(?:[ \t*_]|\n)*(?P<value>[^\n]*)", re.IGNORECASE
)
_GSM8K = re.compile(r"^[ \t]*####[ \t]*(?P<value>[^\n]*)", re.MULTILINE)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_IS = re.compile(
    r"\banswer\s+(?:is|would\s+be|will\s+be|should\s+be)\b\s*:?[ \t*_]*(?P<value>[^\n]*)", re.IGNORECASE
)
_ANSWER_COLON = re.compile(r"\banswer\s*[*_]*\s*[:：](?:[ \t*_]|\n)*(?P<value>[^\n]*)", re.IGNORECASE)
# A number token for the fallback: clock times and ratios, grouped thousands, fractions, decimals.
_LAST_NUMBER = re.compile(
    r"(?<![\w.])(?:\d{1,2}:\d{2}(?::\d{2})?(?:\s?[ap]\.?m\b\.?)?|\d+:\d+"
    r"|[-−]?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?%?)(?![\d,]\d)",
    re.IGNORECASE,
)
# End of a sentence: a period (or ! ?) followed by space or the end, but not the period of "a.m." or "12.5".
_SENTENCE_END = re.compile(
    r"(?<![ap]\.[m])(?<!\b[ap])[.!?](?=\s|$)|\s+(?:because|since|so that|which)\s", re.I
)
_TRIM_CHARS = " \t\r\n*_`.,;:!?\"'"


def extract_final_answer(text: str) -> Extraction:
    """The final answer stated in `text`, found by the first rule that matches.

    Rules, in order: "final_answer_line" (`Final answer: X`, "The final answer is X"), "gsm8k" (`#### N`),
    "boxed" (the last `\\boxed{...}`, nested braces allowed), "the_answer_is" ("The answer is X"),
    "answer_colon" ("Answer: X"), "last_number" (the last number anywhere), else "none".
    Within one rule the last occurrence wins, since solutions restate intermediate results first.

    Raises:
        TypeError: if `text` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"extract_final_answer expects a str, got {type(text).__name__}")
    for rule, finder in _FINDERS:
        span = finder(text)
        if span is not None:
            start, end = _clean_span(text, *span)
            if end > start:
                return Extraction(_strip_inner_markdown(text[start:end]), rule, (start, end))
    return Extraction(None, "none", None)


def _last_group(pattern: re.Pattern[str]) -> Callable[[str], tuple[int, int] | None]:
    def find(text: str) -> tuple[int, int] | None:
        last = None
        for match in pattern.finditer(text):
            if match.group("value").strip(_TRIM_CHARS):
                last = match
        return last.span("value") if last else None

    return find


def _find_boxed(text: str) -> tuple[int, int] | None:
    starts = [m.end() for m in _BOXED.finditer(text)]
    for start in reversed(starts):
        end = _matching_brace(text, start)
        if end is not None and text[start:end].strip():
            return start, end
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


def _find_last_number(text: str) -> tuple[int, int] | None:
    last = None
    for last in _LAST_NUMBER.finditer(text):  # noqa: B007 - only the last one is wanted
        pass
    return last.span() if last else None


_FINDERS: tuple[tuple[str, Callable[[str], tuple[int, int] | None]], ...] = (
    ("final_answer_line", _last_group(_FINAL_ANSWER)),
    ("gsm8k", _last_group(_GSM8K)),
    ("boxed", _find_boxed),
    ("the_answer_is", _last_group(_ANSWER_IS)),
    ("answer_colon", _last_group(_ANSWER_COLON)),
    ("last_number", _find_last_number),
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
