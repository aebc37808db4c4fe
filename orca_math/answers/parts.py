"""An answer stated first, then the parts it is made of: the sentence after it is not the answer.

"The animals have 108 legs in total. The 12 cows have 48 legs and the 30 chickens have 60 legs." ends on
48 and 60, but they only make up the 108 stated first. `orca_math.answers.setaside.question_recap` asks
`explains_the_answer_before` whether a trailing sentence is such an explanation, so that `read_closing`
skips it; it knows the question, and hands in how to read it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction

from orca_math.answers.mentions import Mention, find_mentions
from orca_math.answers.normalize import read_number

# A number written in digits ("990" of "990 / 5").
_DIGITS = re.compile(r"(?<![\w.])(?:\d[\d,]*(?:\.\d+)?|\.\d+)")
# A conclusion ("so", "therefore"); a subtotal's "in all" or "total" may explain the answer before it.
_CONCLUDES = re.compile(r"\b(?:so|thus|therefore|hence|overall|finally|in\s+the\s+end|as\s+a\s+result|"
                        r"(?:which|this|that)\s+means|answer)\b", re.I)
# A correction, or a step that ends on a new result ("leaving 22 donuts remaining"): not a look back.
_STEPS_ON = re.compile(r"\b(?:wrong|incorrect|mistake|error|oops|actually|wait|leaving|leaves|remain(?:s|ing)?|left|"
                       r"making|makes|giving|gives|equals?|comes?\s+to|results?\s+in)\b", re.I)


def explains_the_answer_before(sentence: str, mentions: list[Mention], previous: str, echo_words: set[str], *,
                               words: Callable[[str], set[str]], given: Callable[[Mention], bool],
                               off: Callable[[str], bool]) -> bool:
    """Whether `sentence` only explains an answer the sentence before it states.

    The sentence before must speak to the ask (share a word of it) and state one quantity the question
    does not give. Then `sentence` explains it when it answers nothing asked (its quantities are given,
    and one at least is not what is asked: "It sold 45 + 38 = 83 muffins at $3 each." after "The bakery made $249
    from muffins."), or when, without a word of the ask or a conclusion, its quantities make up the
    answer by one step and do not restate it: "The animals have 108 legs in total. The 12 cows have 48
    legs and the 30 chickens have 60 legs." A step on ("She spends $42 on shirts. With the $9 hat she
    spends $51.") says a word of the ask, a conclusion ("gives a total of $51"), or ends on a new
    quantity larger than the answer ("The notebook costs $5 more, for $17."), and is not skipped.

    Args:
        sentence: the sentence after the answer; `mentions` are its quantities.
        previous: the sentence before it.
        echo_words: the ask's content words, less the counted things and names.
        words: the content words of a text, as `echo_words` were made.
        given: whether a quantity is one the question gives.
        off: whether a quantity's text is not what the question asks for (another dimension).
    """
    if not words(previous) & echo_words or _CONCLUDES.search(sentence) or _STEPS_ON.search(sentence):
        return False
    stated = [m for m in find_mentions(previous) if m.kind != "year" and not given(m)]
    if len(stated) != 1 or (answer := _value(stated[0].text)) is None:
        return False
    if off(stated[0].text):
        return False
    elsewhere = [off(m.text) for m in mentions]
    if any(elsewhere) and all(o or given(m) for m, o in zip(mentions, elsewhere, strict=True)):
        return True  # it answers nothing asked
    values = [v for m in mentions if (v := _value(m.text)) is not None]
    if answer in values or answer in written_values(sentence) or words(sentence) & echo_words:
        return False  # "990 / 5 = $198" goes on from the answer before: a step, not its parts
    last = mentions[-1]
    if not given(last) and (value := _value(last.text)) is not None and value > answer:
        return False  # "The notebook costs $5 more, for $17." ends on a new, larger total: a step on
    return answer in _one_step(values)


def written_values(text: str) -> set[Fraction]:
    """The values of the numbers `text` writes in digits ("990" and "5" of "990 / 5"); setaside reads the
    sentence before a check with it too."""
    return {parsed.value for m in _DIGITS.finditer(text) if (parsed := read_number(m.group()))}


def _value(text: str) -> Fraction | None:
    parsed = read_number(text)
    return None if parsed is None or parsed.percent else parsed.value


def _one_step(values: list[Fraction]) -> set[Fraction]:
    """What the values make in one step: their sum, the largest less the others ("$120, less $30 and $35"),
    and each pair's sum, difference, product and quotient."""
    made = {sum(values), 2 * max(values) - sum(values)} if len(values) > 2 else set()
    for i, a in enumerate(values):
        for b in values[i + 1 :]:
            made.update((a + b, abs(a - b), a * b))
            if a and b:
                made.update((a / b, b / a))
    return made

