"""Deterministic final-answer extraction and answer equivalence.

    >>> from orca_math.answers import check_answer
    >>> check_answer("72", "She sold 48 + 24 = 72 clips.\nFinal answer: 72").result
    'equal'

`extract_final_answer` finds the answer in a solution, `parse_number` reads one number from an answer,
`compare_answers` decides "equal", "not_equal" or "cant_tell", and `check_answer` does both.
`find_stated_answer` is the strict reading the Teacher agent uses (a `Final answer:` line, no guessing).
The rules, normalisation and tolerance policy are documented in docs/answers.md.
"""

from orca_math.answers.check import check_answer
from orca_math.answers.closing import Candidate
from orca_math.answers.compare import ROUNDING_MODES, Comparison, compare_answers
from orca_math.answers.extract import CONFIDENCE_LEVELS, RULES, Extraction, extract_final_answer
from orca_math.answers.normalize import parse_number
from orca_math.answers.policy import RULE_SET_VERSION, AnswerPolicy
from orca_math.answers.setaside import SET_ASIDE_REASONS
from orca_math.answers.stated import (
    NO_ANSWER_VALUES,
    ConflictingAnswersError,
    FinalAnswerError,
    canonical_number,
    canonical_value,
    find_final_answer_line,
    find_stated_answer,
    stated_final_answer,
    strict_final_answer,
    with_final_answer_line,
)

__all__ = [
    "NO_ANSWER_VALUES",
    "RULE_SET_VERSION",
    "AnswerPolicy",
    "CONFIDENCE_LEVELS",
    "ROUNDING_MODES",
    "RULES",
    "SET_ASIDE_REASONS",
    "Candidate",
    "Comparison",
    "ConflictingAnswersError",
    "Extraction",
    "FinalAnswerError",
    "canonical_number",
    "canonical_value",
    "check_answer",
    "compare_answers",
    "extract_final_answer",
    "find_final_answer_line",
    "find_stated_answer",
    "parse_number",
    "stated_final_answer",
    "strict_final_answer",
    "with_final_answer_line",
]
