"""Preference data from graded student attempts, as in the Orca-Math paper (arXiv 2402.14830).

For each problem:

* positives: the teacher's solution (``Attempt.reference``) plus the student's correct responses;
* negatives: the student's incorrect responses. When every response is correct, negatives are
  borrowed: one incorrect response from each of ``borrow_negatives_from`` other problems (paper: 4),
  picked with a seeded RNG keyed by the problem id, so the choice does not depend on input order;
* DPO rows are positives x negatives (optionally capped per problem); KTO rows are every positive
  with ``label=True`` and every negative with ``label=False``; SFT rows are the positives.

Ablation switches (`PreferenceOptions`): ``positives="teacher"`` keeps only the teacher's solution,
``positives="student"`` only the student's correct responses (a problem the student never solved
then has no positive), and ``negatives="none"`` drops every negative (no DPO rows, KTO rows are
all desirable, nothing is borrowed).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal

import datasets
from pydantic import Field

from orca_math.errors import InputError
from orca_math.learn.formats import Style, make_completion, make_prompt
from orca_math.options import options_dataclass
from orca_math.records import Attempt

_KTO_RATIO_RANGE = (1.0, 4 / 3)  # TRL's KTO guidance on weighted desirable:undesirable


@options_dataclass
class PreferenceOptions:
    """How preference rows are built (see the module docstring).

    Attributes:
        positives: what counts as a positive: ``"teacher+student"`` (the paper's), ``"teacher"`` or ``"student"``.
        negatives: ``"student"`` (the wrong responses) or ``"none"``.
        borrow_negatives_from: other problems to borrow a negative from when a problem has none (paper: 4; 0: off).
        max_pairs_per_problem: a cap on DPO pairs per problem (None: no cap).
        seed: seeds borrowing and the cap.

    Raises:
        ConfigError: a value outside its bounds; an unknown field is an `UnknownOptionError`
            (also a `TypeError`).
    """

    positives: Literal["teacher+student", "teacher", "student"] = "teacher+student"
    negatives: Literal["student", "none"] = "student"
    borrow_negatives_from: Annotated[int, Field(ge=0)] = 4
    max_pairs_per_problem: Annotated[int, Field(ge=1)] | None = None
    seed: int = 0


@dataclass(frozen=True)
class PreferenceStats:
    """Counts that describe a `PreferenceData`; `suggested_*_weight` balance KTO (see module doc)."""

    problems: int
    all_correct: int
    all_wrong: int
    mixed: int
    problems_without_reference: int
    dpo_pairs: int
    pairs_per_problem_mean: float
    pairs_per_problem_max: int
    kto_desirable: int
    kto_undesirable: int
    desirable_to_undesirable: float | None
    borrowed_negatives: int
    suggested_desirable_weight: float
    suggested_undesirable_weight: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PreferenceData:
    """TRL-format datasets built from graded attempts.

    Attributes:
        dpo: prompt/chosen/rejected + problem_id.
        kto: prompt/completion/label + problem_id.
        sft: prompt/completion (the positives).
        stats: counts; see `PreferenceStats`.
    """

    dpo: datasets.Dataset
    kto: datasets.Dataset
    sft: datasets.Dataset
    stats: PreferenceStats


@dataclass
class _Problem:
    problem_id: str
    question: str
    reference: str | None
    correct: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)


def build_preferences(
    attempts: Iterable[Attempt], options: PreferenceOptions | None = None, *, style: Style = "standard"
) -> PreferenceData:
    """Build DPO, KTO and SFT datasets from graded attempts (see the module docstring).

    Args:
        attempts: graded `Attempt`s (``label`` set); several per problem, one per sample.
        options: the construction switches; defaults to the paper's recipe.
        style: ``"standard"`` (the Orca ``USER:/ASSISTANT:`` text) or ``"conversational"``.

    Raises:
        ValueError: an attempt has no label, a (problem_id, sample_index) repeats, or one problem
            id carries two different questions.
    """
    options = options or PreferenceOptions()
    problems = _group(attempts)
    donors = {pid: p.wrong for pid, p in problems.items() if p.wrong}
    dpo: dict[str, list] = {"prompt": [], "chosen": [], "rejected": [], "problem_id": []}
    kto: dict[str, list] = {"prompt": [], "completion": [], "label": [], "problem_id": []}
    sft: dict[str, list] = {"prompt": [], "completion": []}
    pairs_per_problem: list[int] = []
    borrowed = 0
    for pid, problem in problems.items():
        positives = _positives(problem, options)
        negatives: list[str] = []
        if options.negatives == "student":
            negatives = list(problem.wrong)
            if not negatives:
                negatives = _borrow(pid, donors, options)
                borrowed += len(negatives)
        pairs = [(chosen, rejected) for chosen in positives for rejected in negatives]
        if options.max_pairs_per_problem is not None and len(pairs) > options.max_pairs_per_problem:
            rng = random.Random(f"{options.seed}:cap:{pid}")
            keep = sorted(rng.sample(range(len(pairs)), options.max_pairs_per_problem))
            pairs = [pairs[i] for i in keep]
        pairs_per_problem.append(len(pairs))
        prompt = make_prompt(problem.question, style)
        for chosen, rejected in pairs:
            _append(dpo, prompt=prompt, chosen=make_completion(chosen, style),
                    rejected=make_completion(rejected, style), problem_id=pid)
        for text, label in [(p, True) for p in positives] + [(n, False) for n in negatives]:
            _append(kto, prompt=prompt, completion=make_completion(text, style), label=label, problem_id=pid)
        for text in positives:
            _append(sft, prompt=prompt, completion=make_completion(text, style))
    stats = _stats(problems, pairs_per_problem, kto["label"], borrowed)
    return PreferenceData(
        dpo=_dataset(dpo), kto=_dataset(kto), sft=_dataset(sft), stats=stats
    )


def _group(attempts: Iterable[Attempt]) -> dict[str, _Problem]:
    problems: dict[str, _Problem] = {}
    seen: set[tuple[str, int]] = set()
    for attempt in sorted(attempts, key=lambda a: (a.problem_id, a.sample_index)):
        if attempt.label is None:
            raise InputError(
                f"Attempt {attempt.problem_id}#{attempt.sample_index} has no label; grade attempts before "
                "building preferences."
            )
        key = (attempt.problem_id, attempt.sample_index)
        if key in seen:
            raise InputError(f"Attempt {attempt.problem_id}#{attempt.sample_index} appears twice.")
        seen.add(key)
        problem = problems.setdefault(
            attempt.problem_id, _Problem(attempt.problem_id, attempt.question, attempt.reference)
        )
        if attempt.question.strip() != problem.question.strip():
            raise InputError(f"Problem {attempt.problem_id} has attempts with two different questions.")
        problem.reference = problem.reference or attempt.reference
        (problem.correct if attempt.label else problem.wrong).append(attempt.response)
    return problems


def _positives(problem: _Problem, options: PreferenceOptions) -> list[str]:
    teacher = [problem.reference] if problem.reference and problem.reference.strip() else []
    if options.positives == "teacher":
        return teacher
    if options.positives == "student":
        return list(problem.correct)
    return teacher + problem.correct


def _borrow(problem_id: str, donors: dict[str, list[str]], options: PreferenceOptions) -> list[str]:
    """One incorrect response from each of up to `borrow_negatives_from` other problems."""
    others = sorted(pid for pid in donors if pid != problem_id)
    if not others or options.borrow_negatives_from == 0:
        return []
    # Keyed by the problem id, so a problem's borrowed negatives don't change when others are added.
    rng = random.Random(f"{options.seed}:borrow:{problem_id}")
    chosen = rng.sample(others, min(options.borrow_negatives_from, len(others)))
    return [rng.choice(donors[pid]) for pid in chosen]


def suggest_kto_weights(n_desirable: int, n_undesirable: int) -> tuple[float, float]:
    """(desirable_weight, undesirable_weight) so the weighted ratio lies in TRL's [1, 4/3].

    The majority side keeps weight 1 and the minority side is scaled up to a weighted ratio of
    7/6, the middle of the range; counts already in range, or one side empty, give (1.0, 1.0).
    """
    low, high = _KTO_RATIO_RANGE
    if n_desirable == 0 or n_undesirable == 0 or low <= n_desirable / n_undesirable <= high:
        return 1.0, 1.0
    target = (low + high) / 2
    if n_desirable > n_undesirable:
        return 1.0, round(n_desirable / (n_undesirable * target), 4)
    return round(target * n_undesirable / n_desirable, 4), 1.0


def _stats(
    problems: dict[str, _Problem], pairs: list[int], labels: list[bool], borrowed: int
) -> PreferenceStats:
    desirable = sum(labels)
    undesirable = len(labels) - desirable
    weights = suggest_kto_weights(desirable, undesirable)
    return PreferenceStats(
        problems=len(problems),
        all_correct=sum(1 for p in problems.values() if p.correct and not p.wrong),
        all_wrong=sum(1 for p in problems.values() if p.wrong and not p.correct),
        mixed=sum(1 for p in problems.values() if p.wrong and p.correct),
        problems_without_reference=sum(1 for p in problems.values() if not (p.reference or "").strip()),
        dpo_pairs=sum(pairs),
        pairs_per_problem_mean=sum(pairs) / len(pairs) if pairs else 0.0,
        pairs_per_problem_max=max(pairs, default=0),
        kto_desirable=desirable,
        kto_undesirable=undesirable,
        desirable_to_undesirable=desirable / undesirable if undesirable else None,
        borrowed_negatives=borrowed,
        suggested_desirable_weight=weights[0],
        suggested_undesirable_weight=weights[1],
    )


def _append(columns: dict[str, list], **values: Any) -> None:
    for key, value in values.items():
        columns[key].append(value)


def _dataset(columns: dict[str, list]) -> datasets.Dataset:
    # An empty column has no type to infer; keep the columns so the format is still visible.
    if not next(iter(columns.values())):
        types = {k: datasets.Value("bool" if k == "label" else "string") for k in columns}
        features = datasets.Features(types)
        return datasets.Dataset.from_dict({k: [] for k in columns}, features=features)
    return datasets.Dataset.from_dict(columns)
