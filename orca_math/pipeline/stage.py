"""The stage contract: a stage maps records to records and declares what it reads and writes.

A stage knows nothing about concurrency, files or resuming; the engine runs it. A subclass sets
`name`, `reads` and `writes`, implements `process(row) -> ItemResult`, and puts every parameter
that changes its results into `params()` (they enter the run key). Stages that call a model get
it from `self.model` once the pipeline has bound them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from autogen_core.models import ChatCompletionClient

from orca_math.agents.base import Agent, AgentFailedError, AgentResult
from orca_math.engine.runner import ItemFailedError, ItemResult
from orca_math.models import ModelLike, describe_spec, resolve_model

Row = dict[str, Any]


class StageError(ValueError):
    """A stage was configured wrongly, or its input lacks a field it reads."""


class Stage(ABC):
    """Base class of pipeline stages.

    Subclasses override:
        * `process(row)` — required: turn one input row into an `ItemResult` (output rows and
          drops), or raise `ItemFailedError` with a reason;
        * `params()` — the settings that change results (default: none);
        * `agents()` — the agents it uses, so their card/template hashes enter the run key.

    Class attributes:
        name: the stage's name in run folders and summaries.
        reads: row fields the stage needs; checked on each row.
        writes: row fields the stage adds or changes.
        columns: which of `writes` become columns of the final dataset, with their Python type
            (str, int, float, bool; list and dict are stored as JSON text). Other fields stay in
            the stage's checkpoint only. See `orca_math.pipeline.columns`.
    """

    name: ClassVar[str] = ""
    reads: ClassVar[tuple[str, ...]] = ("id", "question")
    writes: ClassVar[tuple[str, ...]] = ()
    columns: ClassVar[Mapping[str, type]] = {}

    def __init__(self, *, model: ModelLike | None = None) -> None:
        self._model_spec = model
        self._own_model: ChatCompletionClient | None = None
        self.model: ChatCompletionClient | None = None

    def own_model(self) -> ChatCompletionClient | None:
        """The model this stage was built with (resolved once), or None when it uses the pipeline's."""
        if self._model_spec is not None and self._own_model is None:
            self._own_model = resolve_model(self._model_spec)
        return self._own_model

    async def close(self) -> None:
        """Close the stage's own model if the stage built it from a spec (a client passed in is the caller's)."""
        if isinstance(self._model_spec, str) and self._own_model is not None:
            await self._own_model.close()
            self._own_model = None

    def bind(self, model: ChatCompletionClient, *, own_model: ChatCompletionClient | None = None) -> None:
        """Give the stage its model and build its agents.

        A stage built with its own model uses `own_model` when given (the pipeline passes that
        model wrapped in its ManagedClient, so retries, cache and budget cover it too), else its own
        model as is; any other stage uses `model`, the pipeline's.
        """
        if self._model_spec is not None:
            self.model = own_model if own_model is not None else self.own_model()
        else:
            self.model = model
        self.setup()

    def setup(self) -> None:  # noqa: B027 -- optional hook
        """Build agents once the model is known. Override when the stage uses agents."""

    def prepare(self, rows: Iterable[Row]) -> None:  # noqa: B027 -- optional hook
        """See the stage's whole input, in order, before any `process` call.

        Override only when a row's result depends on other rows (e.g. dedup). The pipeline calls
        it (with a fresh pass over the input) only for stages that override it, also on resume.
        """

    def report(self, records: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
        """Extra entries for the run's `summary.json`, computed from this stage's checkpoint records.

        Override to report something the funnel doesn't (e.g. decontamination counts per benchmark).
        """
        return None

    def params(self) -> dict[str, Any]:
        """Settings that change this stage's results."""
        return {}

    def agents(self) -> list[Agent]:
        """The agents this stage calls (after `bind`)."""
        return []

    def fingerprint(self) -> dict[str, Any]:
        """Everything about this stage that enters the run key."""
        return {
            "stage": self.name,
            "class": type(self).__qualname__,
            "params": self.params(),
            "agents": {agent.name: agent.fingerprint for agent in self.agents()},
            "model": describe_spec(self._model_spec) if self._model_spec is not None else None,
            **({"columns": {name: kind.__name__ for name, kind in self.columns.items()}} if self.columns else {}),
        }

    def key(self, row: Row) -> str:
        """The item key in the checkpoint: unique per input row."""
        return row["id"]

    def check_row(self, row: Mapping[str, Any]) -> None:
        missing = [name for name in self.reads if name not in row]
        if missing:
            raise StageError(f"stage {self.name!r} reads {', '.join(missing)}, missing from row {row.get('id')!r}; found: {', '.join(row)}")

    @abstractmethod
    async def process(self, row: Row) -> ItemResult:
        """Turn one row into output rows and drops."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"


async def call_agent(agent: Agent, **inputs: Any) -> AgentResult:
    """Call an agent, turning a reply that never parsed into `ItemFailedError` with its reason."""
    try:
        return await agent.call(**inputs)
    except AgentFailedError as exc:
        raise ItemFailedError(f"{agent.name}: {exc.reason}", raw_reply=exc.raw_reply, attempts=exc.attempts, usage=exc.usage) from None
