"""Rating the quantities of one closing sentence: which look like its answer, which like its inputs.

Standings, strongest first:
- "result": the sentence marks it as its outcome: the result of "48 + 24 = 72", the main quantity after
  "so"/"therefore"/"in total", a number before "left", "remaining", "in all", or after "x =".
- "answer": a verb states it ("she sold 72", "it costs $5").
- "neutral": nothing either way.
- "weak_premise": a duration or rate the question likely gave ("in 12 weeks", "$2 each", "to collect $60").
- "premise": an input: "the 80 students", "of 45", "than 20", "after giving away 9", "the 160-meter
  bridge", an equation's operand written again.
- "aside": inside parentheses, or in a trailing aside or remark ("(He gave away 9.)", "That is 24 more
  than in May."): not the answer, though the reply does state it.
"""

from __future__ import annotations

import re
from fractions import Fraction

from orca_math.answers.mentions import Mention
from orca_math.answers.normalize import read_number
from orca_math.answers.units import read_compound, same_quantity, unit_of

STANDINGS = ("result", "answer", "neutral", "weak_premise", "premise", "aside")

# Labels may sit between a number and its operator, as GSM8K writes them: "20 vanilla – 16 fruity = 4",
# "$22/week - $20/week", "30 minutes for the first train + 35 minutes".
# Each label word is taken whole ((?![\w'-])), so a word cannot be split in many ways (no backtracking blow-up).
_LABEL = r"(?:[\s/]*[a-zA-Z'’][\w'’-]*(?![\w'’-])){0,8}"
_OPERATOR_GAP = re.compile(
    rf"[\s()\[\]]*(?:\([^()\d]*\)\s*)?{_LABEL}[\s()\[\]]*,?\s*(?:is\s+)?(?:[-+−–*×x÷/^]|\\times|\\cdot|times|"
    r"plus|minus|multiplied\s+by|divided\s+by|of(?:\s+the)?)(?:\s+(?:a|an|another|the))?[\s()\[\]]*",
    re.I,
)
_EQUALS_GAP = re.compile(
    rf"[\s()\[\]]*(?:\([^()\d]*\)\s*)?(?:{_LABEL}\s*(?==))?,?\s*(?:=|≈|\\approx|~|equals|is\s+equal\s+to|is|are|gives(?:\s+us)?|makes|"
    r"which\s+is|which\s+equals|that\s+is|comes\s+to|adds\s+up\s+to)\s*(?:about|approximately|around|roughly)?\s*"
    # "12 + 9 + 20 gives a total of 41": the sum is named before its value.
    r"(?:(?:a|the)\s+(?:total|sum|grand\s+total)\s+of\s+\$?\s*)?",
    re.I,
)
RESTATE_GAP = re.compile(
    r"\s*(?:,\s*)?\(?\s*(?:or|i\.?e\.?,?|that\s+is,?|which\s+is|that's|aka|=|\(|or\s+about|or\s+approximately)?"
    r"\s*(?:about|approximately|around|roughly|exactly)?\s*\(?\s*",
    re.I,
)
CONCLUSION = re.compile(
    r"\b(?:so|thus|therefore|hence|altogether|in total|in all|overall|finally|in the end|as a result|"
    r"which means|this means|that means|total|answer)\b",
    re.I,
)
_PREMISE_BEFORE = re.compile(
    r"(?:\b(?:the|each|every|per|from|than|among|between|out\s+of|original|initial)\s+"
    r"(?:the\s+|his\s+|her\s+|their\s+|its\s+|a\s+|an\s+)?|\bof\s+(?:the|his|her|their|its)\s+)[$(]?\s*$",
    re.I,
)
# "a speed of 6", "increased by 20%": often the question's number, but "of"/"by" also introduce answers.
_WEAK_PREMISE_BEFORE = re.compile(r"(?<!\btotal )(?<!\bsum )\b(?:of|by)\s+\$?\s*$", re.I)
_SUBORDINATE = re.compile(
    r"\b(?:if|when|whenever|after|before|since|because|given|once|until|while|assuming|out of)\b", re.I
)
_WEAK_BEFORE = re.compile(r"\b(?:in|within|for|over|during|every)\s+(?:the\s+(?:next|first|last)\s+)?$", re.I)
_RATE_AFTER = re.compile(r"\s*(?:each|apiece|per\s+\w+|an?\s+(?:hour|day|week|month|year|minute|piece|pound))\b", re.I)
_STRONG_AFTER = re.compile(
    r"\s*(?:[a-z]+\s+){0,2}?(?:left|remaining|remain|remains|in\s+total|altogether|in\s+all|total|overall|"
    r"increase|decrease|discount|profit|loss|gain|raise|drop|reduction|change)\b",
    re.I,
)
_MORE_AFTER = re.compile(r"\s*(?:[a-z]+\s+){0,1}?(?:more|fewer|less|extra)\b", re.I)
_PURPOSE_BEFORE = re.compile(r"\bto\s+(?!be\b)[a-z]+\s+(?:the\s+|a\s+|an\s+|his\s+|her\s+|their\s+)?\$?$", re.I)
# "2x - 3 = 7 gives x = 5": numbers in an equation with a variable are inputs; "x = 5" is the solution.
_ALGEBRA = re.compile(r"\d[a-z]\b|\b[a-z]\s*[-+*/^]\s*[\d(]|[-+*/^]\s*[a-z]\b(?!\s*[a-z])")  # variables: lower case
_ASSIGNED = re.compile(r"(?<![\w.])[a-z]\s*=\s*\$?$", re.I)
_RESULT_VERB_BEFORE = re.compile(
    r"\b(?:leaving|leaves|giving|making|totaling|totalling|which\s+is|that\s+is|which\s+makes|equals?|"
    r"(?:leaving|leaves|left)\s+(?:him|her|them|us|me|it|you)\s+with|rounds?\s+(?:down\s+|up\s+)?to|"
    r"comes?\s+to|amounts?\s+to|adds?\s+up\s+to|left\s+with|ends?\s+(?:up\s+)?with|ended\s+(?:up\s+)?with)\s*$",
    re.I,
)
_PAST_TENSE_BEFORE = re.compile(r"\b[a-z]{2,}ed\s*$", re.I)  # "picked 18", "baked 30"
# One whitespace character per step: "(?:\s+|...)+$" backtracks exponentially on a long run of spaces.
_FILLERS = re.compile(
    r"(?:\s|\b(?:approximately|about|around|roughly|exactly|only|just|nearly|almost|a\s+total\s+of|total\s+of|"
    r"in\s+total|altogether|now|still|another|an\s+additional|additional|over|under|a|an)\b|[$*_])+$",
    re.I,
)
_VERB_BEFORE = re.compile(
    r"\b(?:is|are|was|were|be|been|makes?|made|gives?|totals?|has|have|had|needs?|needed|gets?|got|costs?|"
    r"pays?|paid|earns?|earned|earning|sells?|sold|spends?|spent|saves?|saved|owes?|takes?|took|buys?|bought|"
    r"uses?|used|reads?|eats?|ate|scored?|drives?|drove|walks?|walked|runs?|ran|weighs?|holds?|contains?|"
    r"collects?|collected|receives?|received|keeps?|kept|wins?|won|loses?|lost|reach(?:es)?|reached|"
    r"becomes?|became|travels?|traveled|travelled|covers?|covered|goes|went|flies|flew|lasts?|lasted|"
    r"needs\s+to\s+\w+|=|:)\s*$",
    re.I,
)


def value_of(mention: Mention) -> Fraction | None:
    """The value of a plain number or number-word mention; None for times, ratios and compounds."""
    if mention.kind not in ("number", "word", "ordinal"):
        return None
    parsed = read_number(mention.text)
    return None if parsed is None else parsed.value


def restates(first: Mention, second: Mention) -> bool:
    """True when `second` is `first` again: the same value, or the same quantity in another unit."""
    if second.kind == "compound" and first.kind != "compound" and first.unit:
        return restates(second, first)  # "225 minutes (that is 3 hours 45 minutes)"
    if first.kind == "compound" and second.unit:
        parts = read_compound(first.text.lower())
        b = value_of(second)
        return bool(parts) and b is not None and any(
            unit_of(unit) == unit_of(second.unit) and total == b for unit, total in parts
        )
    a, b = value_of(first), value_of(second)
    if a is None or b is None:
        return False
    if a == b:
        return True
    parsed = read_number(second.text)
    return bool(first.unit and second.unit) and same_quantity(
        a, first.unit, b, second.unit, None if parsed is None else parsed.decimals
    )


def links(text: str, mentions: list[Mention]) -> list[str | None]:
    """How each mention is joined to the one before it: "op", "eq", "restate" or None."""
    found: list[str | None] = [None]
    for previous, mention in zip(mentions, mentions[1:], strict=False):
        gap = text[previous.stop : mention.start]
        # "of" is an operator only after a share ("25% of 80"); as a word in a label it is not one.
        if _OPERATOR_GAP.fullmatch(gap) and (_ARITHMETIC.search(gap) or _is_share(previous)):
            found.append("op")
        elif gap == "(" and previous.stop == previous.end:
            found.append("op")  # "9(2/3) = 6", "2(40 + 9) = 98": a product written without a sign
        elif _EQUALS_GAP.fullmatch(gap):
            found.append("eq")
        elif RESTATE_GAP.fullmatch(gap) and restates(previous, mention):
            found.append("restate")
        else:
            found.append(None)
    return found


_ARITHMETIC = re.compile(r"[-+−–*×÷/^]|\\times|\\cdot|\b(?:x|times|plus|minus|multiplied|divided)\b")


def _is_share(mention: Mention) -> bool:
    return "%" in mention.text or "percent" in mention.text.lower() or "/" in mention.text or "frac" in mention.text


def chains(mentions: list[Mention], joins: list[str | None]) -> tuple[set[int], set[int]]:
    """Indexes of the operands and of the results of the equations among `mentions`.

    Only a chain with an operator and an "=" (or "is") is an equation; "75% of the 40 questions"
    alone has no result, and its numbers are left to be rated.
    """
    operands: set[int] = set()
    results: set[int] = set()
    index = 0
    while index < len(mentions):
        end = index
        while end + 1 < len(mentions) and joins[end + 1] in ("op", "eq"):
            end += 1
        chain = joins[index + 1 : end + 1]
        # "84 / 12 = 7" is one fraction-looking mention, but it is a division: the chain has an operator.
        divided = any(link == "eq" and "/" in mentions[index + k].text for k, link in enumerate(chain))
        last_eq = max((i for i, link in enumerate(chain) if link == "eq"), default=None)
        if ("op" in chain or divided) and last_eq is not None:
            result = index + last_eq + 1
            results.add(result)
            operands.update(i for i in range(index, end + 1) if i != result)
        index = end + 1
    return operands, results


def inputs(mentions: list[Mention], operands: set[int], after: int = -1) -> set[Fraction]:
    """Values that equations use as inputs after mention `after`; "12 / 20" gives 12 and 20 as well."""
    values: set[Fraction] = set()
    for j in operands:
        if j <= after:
            continue
        value = value_of(mentions[j])
        if value is not None:
            values.add(value)
        parts = re.match(r"\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)", mentions[j].text)
        if parts:
            values.update(Fraction(part) for part in parts.groups())
    return values


def rate_sentence(
    text: str, span: tuple[int, int], mentions: list[Mention], aside: bool
) -> list[tuple[Mention, str]]:
    """(mention, standing) for the quantities of one sentence that may be its answer."""
    operands, results = chains(mentions, links(text, mentions))
    every_input = inputs(mentions, operands)
    # Inputs used after each mention, built once from the end (the sets are small).
    later: list[set[Fraction]] = [set() for _ in mentions]
    running: set[Fraction] = set()
    for i in range(len(mentions) - 1, -1, -1):
        later[i] = running
        if i in operands:
            running = running | inputs(mentions, {i})
    last_result = max(results, default=-1)
    kept: list[tuple[int, Mention, str]] = []
    for i, mention in enumerate(mentions):
        if i in operands:
            continue  # an input of an equation in this sentence: not the answer
        value = value_of(mention)
        if i in results and value in later[i]:
            continue  # "2 * 16 = 32 ..., so 32 + 16 = 48": an intermediate result, carried into a later sum
        standing = "aside" if aside else _standing(text, span, mention, i in results, mentions[i - 1] if i else None)
        # A quantity that feeds a later equation, or a result followed by another one, leads up to the answer.
        if standing in ("result", "answer") and (value in later[i] or last_result > i):
            standing = "neutral"
        kept.append((i, mention, standing))
    if not aside:
        kept = _apply_conclusion(text, span, kept)
        kept = _later_result_wins(kept)
    # "For 50 minutes she earns 0.2 x 50": an input written again is no candidate, unless a verb states
    # it, or the equation it feeds is only an explanation (then the input may well be the answer).
    # "For 50 minutes she earns 0.2 x 50": an input written again before its equation is no candidate,
    # unless a verb states it, or the equation is only an explanation (then it may well be the answer).
    # Written again after the equation ("= 16 amoebae after 8 days") it is only likely not the answer.
    if any(s == "result" for i, _, s in kept if i in results):
        first_operand = min(operands, default=len(mentions))
        filtered = []
        for i, mention, standing in kept:
            restated = i not in results and value_of(mention) in every_input
            if restated and i < first_operand and standing not in ("result", "answer"):
                continue
            filtered.append((i, mention, _at_most_weak(standing) if restated and i > first_operand else standing))
        kept = filtered
    return [(mention, standing) for _, mention, standing in kept]


def _apply_conclusion(text: str, span: tuple[int, int], kept: list[tuple[int, Mention, str]]):
    """After the last "so"/"therefore" of a sentence, its main quantity is the result; digits before it lead up.

    The main quantity is the best rated one after the cue, in the same clause, and the first of those
    on a tie ("so 9 bikes have 18 wheels": 18, which a verb states; "Hence, 64 cubes of side 2 cm": 64).
    A cue after every number ("... 12 apples in total") marks nothing here. A number written in words
    before the cue is left alone: "Only two are left, so 8 were eaten" may well answer with two.
    """
    for cue in reversed(list(CONCLUSION.finditer(text, span[0], span[1]))):
        clause_end = _clause_end(text, cue.end(), span[1])
        after = [
            k for k, (_, m, s) in enumerate(kept)
            if cue.end() <= m.start < clause_end and s in ("result", "answer", "neutral")
        ]
        if after:
            break
    else:
        return kept
    main = min(after, key=lambda k: (STANDINGS.index(kept[k][2]), k))
    rated = []
    for k, (i, mention, standing) in enumerate(kept):
        if k == main:
            standing = "result"
        elif mention.start < cue.start() and mention.kind != "word" and standing in ("result", "answer"):
            standing = "neutral"
        rated.append((i, mention, standing))
    return rated


def _at_most_weak(standing: str) -> str:
    return standing if STANDINGS.index(standing) >= STANDINGS.index("weak_premise") else "weak_premise"


def _later_result_wins(kept: list[tuple[int, Mention, str]]) -> list[tuple[int, Mention, str]]:
    """ "... which is 40 stickers, leaving 60 stickers": of two results in digits, the later one stands."""
    last = max((k for k, (_, _, s) in enumerate(kept) if s == "result"), default=-1)
    return [
        (i, m, "neutral" if s == "result" and k < last and m.kind != "word" else s)
        for k, (i, m, s) in enumerate(kept)
    ]


def _clause_end(text: str, start: int, end: int) -> int:
    found = re.compile(r"[;:]").search(text, start, end)
    return found.start() if found else end


_CONTEXT = 60  # characters of context the end-anchored patterns look at
_EXPLAINS = re.compile(r"\b(?:because|since|as)\b", re.I)
_CLAUSE_SPLIT = re.compile(r"[,;:]")
_HYPHEN_ADJECTIVE = re.compile(r"-[^\W\d_]")  # "the 160-meter bridge", "a 5-day trip"


def _standing(
    text: str, span: tuple[int, int], mention: Mention, is_result: bool, previous: Mention | None
) -> str:
    whole_before = text[span[0] : mention.start]
    if is_result:
        # "He can skip 4 classes because 10 - 4 = 6": an equation that explains is not the conclusion.
        return "weak_premise" if _EXPLAINS.search(_CLAUSE_SPLIT.split(whole_before)[-1]) else "result"
    before = whole_before[-_CONTEXT:]
    after = text[mention.stop : min(span[1], mention.stop + _CONTEXT)]
    clause = _CLAUSE_SPLIT.split(whole_before)[-1]
    if whole_before.count("(") > whole_before.count(")"):
        return "aside"
    if mention.kind == "ordinal" and _PREMISE_BEFORE.search(before):
        return "weak_premise"  # "on the 3rd day" is given, but "by the 4th step" may answer "which step"
    if (
        (_PREMISE_BEFORE.search(before) and mention.kind != "clock")
        or _HYPHEN_ADJECTIVE.match(text, mention.end)
        or (_ALGEBRA.search(clause) and not _ASSIGNED.search(before))
    ):
        return "premise"
    # "after giving away 9", "if she saves $5": an input. A clause that opens with "If"/"After" runs to
    # its comma; one that starts mid-clause or after "so" ends at its first quantity ("so after 7 months
    # the account holds $1,750"). Only weak: where such a clause ends is a guess.
    subordinate = None
    for subordinate in _SUBORDINATE.finditer(clause):  # noqa: B007 - only the last one is wanted
        pass
    if subordinate is not None:
        opens_clause = not clause[: subordinate.start()].strip(" *_\n")
        clause_start = mention.start - len(clause)
        if opens_clause or previous is None or previous.start < clause_start + subordinate.end():
            return "weak_premise"
    with_unit = text[mention.end : min(span[1], mention.end + _CONTEXT)]
    bare = _FILLERS.sub("", before)
    if _STRONG_AFTER.match(with_unit) or _ASSIGNED.search(before) or _RESULT_VERB_BEFORE.search(bare):
        return "result"
    if _MORE_AFTER.match(with_unit):
        return "answer"
    if _PURPOSE_BEFORE.search(before) or _WEAK_PREMISE_BEFORE.search(before):
        return "weak_premise"  # "... to collect $6000": the goal the question gave
    if _VERB_BEFORE.search(bare) or _PAST_TENSE_BEFORE.search(bare):
        return "answer"
    money = unit_of(mention.unit) is not None and unit_of(mention.unit)[0] == "money"
    if (_WEAK_BEFORE.search(before) and not money) or _RATE_AFTER.match(after):
        return "weak_premise"
    return "neutral"
