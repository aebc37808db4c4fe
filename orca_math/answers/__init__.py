"""Deterministic final-answer extraction and answer equivalence.

    >>> from orca_math.answers import check_answer
    >>> check_answer("72", "She sold 48 + 24 = 72 clips.\nFinal answer: 72").result
    'equal'

`extract_final_answer` finds the answer in a solution, `parse_number` reads one number from an answer,
`compare_answers` decides "equal", "not_equal" or "cant_tell", and `check_answer` does both.
The rules, normalisation and tolerance policy are documented in docs/answers.md.
"""

from orca_math.answers.compare import Comparison, check_answer, compare_answers
from orca_math.answers.extract import RULES, Extraction, extract_final_answer
from orca_math.answers.normalize import parse_number

__all__ = [
    "RULES",
    "Comparison",
    "Extraction",
    "check_answer",
    "compare_answers",
    "extract_final_answer",
    "parse_number",
]
