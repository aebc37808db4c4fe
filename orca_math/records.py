"""Typed records that flow between agents, stages and files, with their JSON Schemas.

Every record is a pydantic model with closed fields (`extra="forbid"`), so a typo is an error.
`schema_of(Model)` gives the JSON Schema that written rows are validated against with `jsonschema`.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: The origin of problems read from a seed file.
SEED_ORIGIN = "seed"
#: Where a problem came from: `SEED_ORIGIN`, or the origin declared by the card of the agent that wrote it
#: (``origin:`` in agents/*.yaml; `orca_math.agents.origins()` lists them). Records know no agents, so an
#: origin is any name here; the agents' cards say what each one means.
Origin = str
VerdictLabel = Literal["Correct", "Incorrect"]


class Record(BaseModel):
    """Base of every record: closed fields, JSON round-trip, schema validation."""

    model_config = ConfigDict(extra="forbid", frozen=False)

    def to_row(self) -> dict[str, Any]:
        """The record as a JSON-compatible dict."""
        return self.model_dump(mode="json")


class Usage(Record):
    """Tokens used by model calls. `estimated` is true when a reply carried no usage and tiktoken counted.

    The token counts include replies served from the response cache; `cached_prompt_tokens` and
    `cached_completion_tokens` say how many of them were, so costs count only paid calls and the
    rest is what the cache saved.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cached_calls: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def of_reply(cls, result: Any) -> Usage:
        """The usage of one reply (an autogen `CreateResult`): its tokens, one call, cached or not."""
        usage = getattr(result, "usage", None)
        prompt, completion = getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0
        cached = bool(getattr(result, "cached", False))
        return cls(prompt_tokens=prompt, completion_tokens=completion, calls=1, cached_calls=int(cached),
                   cached_prompt_tokens=prompt if cached else 0, cached_completion_tokens=completion if cached else 0)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            calls=self.calls + other.calls,
            cached_calls=self.cached_calls + other.cached_calls,
            cached_prompt_tokens=self.cached_prompt_tokens + other.cached_prompt_tokens,
            cached_completion_tokens=self.cached_completion_tokens + other.cached_completion_tokens,
            estimated=self.estimated or other.estimated,
        )


# --------------------------------------------------------------------------- problems and seeds


class Problem(Record):
    """A math word problem, from a seed file or written by an agent.

    `known_answer` is the answer we know without asking the teacher: a seed's gold answer or an
    Ask-Me-Anything target. `gold_solution` is a seed's worked solution, when the seed file has one.
    """

    id: str
    question: str
    origin: Origin = SEED_ORIGIN
    parent_id: str | None = None
    round: int = 0
    known_answer: str | None = None
    gold_solution: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


# --------------------------------------------------------------------------- agent outputs


class NewProblem(Record):
    """One problem written by Ask-Me-Anything, asking for `target`, a number of the statement."""

    question: str = Field(min_length=1)
    target: str = Field(min_length=1)


class Restatement(Record):
    """Ask-Me-Anything's output: the seed restated as a statement with its answer, and new problems."""

    statement: str = Field(min_length=1)
    problems: list[NewProblem] = Field(min_length=1)


class Suggestions(Record):
    """Suggester's output: ways to make a problem harder. It neither solves nor rewrites the problem."""

    suggestions: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)


class EditedProblem(Record):
    """Editor's output: one harder, self-contained problem."""

    question: str = Field(min_length=1)


class Solution(Record):
    """Teacher's output: a step-by-step solution and its single final answer."""

    solution: str = Field(min_length=1)
    final_answer: str = Field(min_length=1)


class Program(Record):
    """ProgramWriter's output: a Python program that assigns the problem's answer to `answer`."""

    code: str = Field(min_length=1)


class Verification(Record):
    """How a row's answer was verified, with the evidence: the `verification` column of a dataset.

    `method` is `known_target` (the answer known before solving), `majority` (agreeing independent
    solutions), `program` (an executed program's result), a custom verifier's name, or `none` (not
    checked). `answers` and `votes` list each distinct answer the solutions gave and how many gave it.
    """

    method: str = Field("none", description="`known_target`, `majority`, `program`, a custom verifier's name, or `none`")
    verified: bool | None = Field(None, description="whether the answer was confirmed (empty when it was not checked)")
    answer: str | None = Field(None, description="the answer the check confirmed, or the one it checked")
    answers: list[str] = Field(default_factory=list, description="each distinct final answer of the solutions")
    votes: list[int] = Field(default_factory=list, description="how many solutions gave each of `answers`")
    known_answer: str | None = Field(None, description="the target it was checked against (`known_target`)")
    program: str | None = Field(None, description="the program that was run (`program`)")
    program_answer: str | None = Field(None, description="the program's result (`program`)")
    program_error: str | None = Field(None, description="why the program gave no result (`program`)")
    reason: str | None = Field(None, description="why the answer was not confirmed, in one sentence")


class StudentReply(Record):
    """A student's reply under evaluation, kept verbatim, with its strictly read final answer (or None)."""

    text: str
    final_answer: str | None = None


class Verdict(Record):
    """A grade of a student's solution against the teacher's.

    `method` says who decided: `exact` (deterministic answer checking) or `llm` (the Grader agent).
    """

    analysis: str
    verdict: VerdictLabel
    method: Literal["exact", "llm"] = "llm"

    @property
    def correct(self) -> bool:
        return self.verdict == "Correct"


# --------------------------------------------------------------------------- run outputs


class Failure(Record):
    """An input that did not produce an output, with why. Nothing is dropped without one of these."""

    id: str
    stage: str
    reason: str
    error_type: str
    status: int | None = None  # the HTTP status behind a model error, when there was one
    attempts: int = 1
    raw_reply: str | None = None
    input: dict[str, Any] = Field(default_factory=dict)


class Drop(Record):
    """A row removed on purpose by a filter, dedup or decontamination step, with the reason."""

    id: str
    stage: str
    reason: str
    detail: str | None = None
    duplicate_of: str | None = None
    row: dict[str, Any] = Field(default_factory=dict)


class DatasetRow(Record):
    """One row of a generated dataset: the orca-math-200k columns first, then provenance.

    This model is the one source of the dataset's columns: their order, types (the `datasets.Features`
    and parquet schema) and descriptions (the dataset card's column table) are read from it.
    """

    question: str = Field(description="the math word problem")
    answer: str = Field(description="the teacher's step-by-step solution, ending in a line `Final answer: <value>`")
    id: str = Field(description="unique id of the problem")
    parent_id: str | None = Field(None, description="id of the problem it was written from (the seed, or the previous hardening round); empty for seeds")
    origin: Origin = Field(SEED_ORIGIN, description="where the problem came from: `seed`, or the origin named by the card of the agent that wrote it (`ask_me_anything`: Ask-Me-Anything expansion, `suggester_editor`: Suggester/Editor hardening)")
    round: int = Field(0, description="hardening round (0 for seeds and Ask-Me-Anything problems)")
    known_answer: str | None = Field(None, description="the answer known before solving: the seed's answer or the Ask-Me-Anything target")
    final_answer: str | None = Field(None, description="the final answer read from the teacher's solution")
    verification: Verification = Field(default_factory=Verification, description="how the answer was verified, with the evidence: `method` (`known_target`, `majority`, `program` or `none`), the solutions' `answers` and `votes`, the `program` and its `program_answer` or `program_error`, and the `reason` when unconfirmed")
    verified: bool | None = Field(None, description="whether the answer was verified (false only on rows kept with --keep-unverified; empty when not checked)")
    teacher_model: str | None = Field(None, description="the model that wrote the solution")
    prompt_tokens: int = Field(0, description="prompt tokens spent solving this problem")
    completion_tokens: int = Field(0, description="completion tokens spent solving this problem")
    contaminated: bool | None = Field(None, description="whether the problem overlaps a benchmark test set (kept only when decontamination flags)")
    contaminated_with: list[str] | None = Field(None, description="the benchmarks the problem overlaps")


def column_descriptions(model: type[BaseModel]) -> dict[str, str]:
    """Each field's description, in field order (for dataset cards)."""
    return {name: field.description or "" for name, field in model.model_fields.items()}


def dataset_features(model: type[BaseModel], extra: dict[str, Any] | None = None):
    """The `datasets.Features` of a record's fields, in order, plus `extra` (name -> `datasets` feature)."""
    import typing

    import datasets

    def feature(annotation: Any):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if typing.get_origin(annotation) in (typing.Union, __import__("types").UnionType) and len(args) == 1:
            return feature(args[0])
        if typing.get_origin(annotation) is list:
            return datasets.Sequence(feature(typing.get_args(annotation)[0]))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):  # a struct column (`verification`)
            nested = typing.get_type_hints(annotation)
            return {name: feature(nested[name]) for name in annotation.model_fields}
        dtype = {str: "string", int: "int64", float: "float64", bool: "bool"}.get(annotation)
        if dtype is None:
            raise TypeError(f"{model.__name__}: no datasets feature for {annotation!r}")
        return datasets.Value(dtype)

    hints = typing.get_type_hints(model)
    return datasets.Features({**{name: feature(hints[name]) for name in model.model_fields}, **(extra or {})})


class EvaluationItem(Record):
    """One benchmark item of an evaluation: the student's reply and its grade, or why there is none.

    The evaluation's `datasets.Features` and `items.jsonl` columns are read from this model.
    """

    benchmark: str | None = Field(None, description="the benchmark the item belongs to")
    id: str | None = Field(None, description="the item's id within its benchmark")
    question: str | None = Field(None, description="the benchmark question")
    gold: str | None = Field(None, description="the gold answer")
    response: str | None = Field(None, description="the student's reply, verbatim")
    extracted_answer: str | None = Field(None, description="the final answer read from the reply")
    extraction_rule: str | None = Field(None, description="the rule that found it (`final_answer_line`, `boxed`, ...)")
    verdict: str | None = Field(None, description="`Correct` or `Incorrect`; empty on failure rows")
    correct: bool | None = Field(None, description="whether the verdict is Correct (False on failure rows)")
    method: str | None = Field(None, description="who decided: `exact` (the answer checker) or `llm` (the Grader)")
    analysis: str | None = Field(None, description="the one-sentence error analysis")
    audit_verdict: str | None = Field(None, description="the LLM's verdict on a deterministic decision, when audited")
    audit_error: str | None = Field(None, description="why an audit gave no verdict")
    error: str | None = Field(None, description="why the item has no verdict (a model or grader failure)")


class Attempt(Record):
    """A student's response to a problem, optionally with its grade."""

    problem_id: str
    sample_index: int
    question: str
    response: str
    reference: str | None = None
    final_answer: str | None = None
    label: bool | None = None
    method: str | None = None


class PreferencePair(Record):
    """A DPO pair in TRL's explicit-prompt format."""

    prompt: str
    chosen: str
    rejected: str
    problem_id: str | None = None


@functools.cache
def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of a record class."""
    return model.model_json_schema()


def compile_validator(schema: dict[str, Any]):
    """A fast validation function for a JSON Schema, raising `jsonschema.ValidationError`.

    Rows are checked on hot paths (every model reply, every output row): fastjsonschema's compiled
    check is about 12x faster than jsonschema's; jsonschema runs only to explain a failure.
    """
    import jsonschema  # here, not at the top: it costs about 70 ms at every `orca-math` start

    slow = jsonschema.validators.validator_for(schema)(schema)
    try:
        import fastjsonschema

        fast = fastjsonschema.compile(schema)
    except Exception:  # not installed, or a schema it can't compile: jsonschema alone
        return slow.validate

    def validate(data: Any) -> None:
        try:
            fast(data)
        except fastjsonschema.JsonSchemaException:
            slow.validate(data)  # raises the detailed jsonschema error
            raise jsonschema.ValidationError("does not match the schema") from None  # the two disagree

    return validate


@functools.cache
def _validator(model: type[BaseModel]):
    return compile_validator(schema_of(model))


def validate_row(row: dict[str, Any], model: type[BaseModel]) -> None:
    """Validate a plain dict against a record's JSON Schema; raises `jsonschema.ValidationError`."""
    _validator(model)(row)
