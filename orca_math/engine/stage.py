"""The stage contract: a stage maps rows to rows and declares what it reads and writes.

Every workload is stages on one runner: the generation pipeline's stages, and sampling,
labelling and evaluation. A stage knows nothing about concurrency, files, executors or resuming;
the engine runs it. A subclass sets `name`, `reads` and `writes`, implements
`process(row) -> ItemResult`, and puts every parameter that changes its results into `params()`
(they enter the run key). The agents it calls are declared when it is built
(``super().__init__(agents={"teacher": teacher or Teacher})``): a class or an instance per role,
fingerprinted for the run key without building anything, and built over the stage's model by
`bind`.

Class flags tell the runner what a stage needs, instead of the runner asking what class it is:

* `requires_answers`: its input rows need a known answer (the seeds are checked before any call);
* `needs_whole_input`: `prepare(rows)` sees the whole input, in order, before `process` (dedup);
* `calls_model`: whether `process` calls a model (a stage that doesn't needs no client, batch
  submission or remote worker).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from orca_math.engine.items import ItemResult
from orca_math.errors import ConfigError

if TYPE_CHECKING:
    from autogen_core.models import ChatCompletionClient

    from orca_math.engine.estimate import EstimateContext, Population, StageEstimate

Row = dict[str, Any]
_UNSET = object()  # an attribute that did not exist before `setup`


class StageError(ConfigError):
    """A stage was configured wrongly, or its input lacks a field it reads."""


class Stage(ABC):
    """Base class of every stage.

    Subclasses override:
        * `process(row)` — required: turn one input row into an `ItemResult` (output rows and
          drops), or raise `ItemFailedError` with a reason;
        * `params()` — the settings that change results (default: none);
        * `setup()` — build what `process` needs once the model is known (default: the declared
          agents; call ``super().setup()`` when overriding);
        * `prepare(rows)` and `outdated(records)` — only with ``needs_whole_input = True``;
        * `estimate(population, context)` — calls, tokens and cost for dry runs (default: none
          for stages that call no model, "not estimated" for those that do);
        * `report(records)` — extra entries for the run's summary.

    Class attributes:
        name: the stage's name in run folders and summaries.
        reads: row fields the stage needs; checked on each row by `check_row`.
        writes: row fields the stage adds or changes.
        columns: which of `writes` become columns of a generated dataset, with their Python type.
        requires_answers, needs_whole_input, calls_model: see the module docstring.

    Args:
        model: a model for this stage only (a spec or a client); None uses the job's model. The
            engine wraps it like the job's (retries, the shared cache and budget).
        agents: the agents this stage calls, by role: an `Agent` subclass, or an instance whose
            card, template and sampling are kept and which is called through the stage's model.
    """

    name: ClassVar[str] = ""
    reads: ClassVar[tuple[str, ...]] = ("id", "question")
    writes: ClassVar[tuple[str, ...]] = ()
    columns: ClassVar[Mapping[str, type]] = {}
    requires_answers: ClassVar[bool] = False
    needs_whole_input: ClassVar[bool] = False
    calls_model: ClassVar[bool] = True

    def __init__(self, *, model: Any = None, agents: Mapping[str, Any] | None = None) -> None:
        self.model_spec = model
        self.model: ChatCompletionClient | None = None
        self._agent_choices: dict[str, Any] = {role: choice for role, choice in (agents or {}).items() if choice is not None}
        self._agents: dict[str, Any] = {}

    # ------------------------------------------------------------------ binding

    def bind(self, model: ChatCompletionClient) -> None:
        """Give the stage its model (the engine's managed client) and build what it needs."""
        self.model = model
        before = dict(self.__dict__)
        self.setup()
        # What setup built over the client (agents, a grading policy) is rebuilt where the stage runs,
        # never pickled: a remote worker binds the stage to its own client (see `__getstate__`).
        built = before.pop("_built_by_setup", {})
        for name, value in self.__dict__.items():
            if name not in built and name != "_built_by_setup" and (name not in before or value is not before[name]):
                built[name] = before.get(name, _UNSET)
        self._built_by_setup = built

    def setup(self) -> None:
        """Build the declared agents over `self.model`. Override to build more; call super()."""
        self._agents = {role: _bound_agent(choice, self.model) for role, choice in self._agent_choices.items()}

    def agent_for(self, role: str) -> Any:
        """The agent playing `role`, built by `bind`."""
        try:
            return self._agents[role]
        except KeyError:
            if role in self._agent_choices:
                raise RuntimeError(f"stage {self.name!r} is not bound to a model yet; the engine binds it before running") from None
            raise KeyError(f"stage {self.name!r} has no agent role {role!r}; roles: {', '.join(self._agent_choices) or 'none'}") from None

    def agents(self) -> list[Any]:
        """The agents this stage calls (after `bind`)."""
        return list(self._agents.values())

    async def close(self) -> None:  # noqa: B027 -- optional hook
        """Release what `setup` built (the engine closes the clients it built itself)."""

    # ------------------------------------------------------------------ optional hooks

    def prepare(self, rows: Iterable[Row]) -> None:  # noqa: B027 -- optional hook
        """See the stage's whole input, in order, before any `process` call (``needs_whole_input``).

        The runner calls it with a fresh pass over the input, also on resume, so a resumed run
        decides exactly as an uninterrupted one.
        """

    def outdated(self, records: Iterable[dict[str, Any]]) -> set[str]:
        """Keys of results recorded by an earlier run that `prepare`'s decisions no longer agree with.

        Asked after `prepare` (``needs_whole_input`` only), with the last checkpoint record of each
        item. On resume, items that failed before may have added rows to the input, and a result
        decided without them (a row kept that now duplicates one of them) would stand: the runner
        processes the returned keys again. The default: nothing is outdated.
        """
        return set()

    def report(self, records: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
        """Extra entries for the run's `summary.json`, computed from this stage's checkpoint records."""
        return None

    def params(self) -> dict[str, Any]:
        """Settings that change this stage's results."""
        return {}

    def estimate(self, population: Population, context: EstimateContext) -> StageEstimate:
        """Estimated calls, tokens and cost of this stage over `population`, which it may update.

        The default estimates nothing: "no model calls" for stages that call none, else "not
        estimated" (override to estimate a custom stage that calls a model).
        """
        from orca_math.engine.estimate import StageEstimate

        rows = population.rows
        note = "not estimated (the stage defines no estimate)" if self.calls_model else "no model calls; drops can't be predicted"
        return StageEstimate(self.name, inputs=rows, outputs=rows, note=note)

    # ------------------------------------------------------------------ identity

    def agent_fingerprints(self) -> dict[str, Any]:
        """Card, template and class hashes of each declared agent, computed without building any."""
        return {role: _agent_fingerprint(choice) for role, choice in self._agent_choices.items()}

    def fingerprint(self) -> dict[str, Any]:
        """Everything about this stage that enters the run key."""
        from orca_math.models import describe_spec

        return {
            "stage": self.name,
            "class": type(self).__qualname__,
            "params": self.params(),
            "agents": self.agent_fingerprints(),
            "model": describe_spec(self.model_spec) if self.model_spec is not None else None,
            **({"columns": {name: kind.__name__ for name, kind in self.columns.items()}} if self.columns else {}),
        }

    def key(self, row: Row) -> str:
        """The item key in the checkpoint: unique per input row."""
        return row["id"]

    def check_row(self, row: Mapping[str, Any]) -> None:
        """Raise `StageError` naming the fields of `reads` that `row` lacks, and those it has."""
        missing = [name for name in self.reads if name not in row]
        if missing:
            raise StageError(f"stage {self.name!r} reads {', '.join(missing)}, missing from row {row.get('id')!r}; found: {', '.join(row)}")

    @abstractmethod
    async def process(self, row: Row) -> ItemResult:
        """Turn one row into output rows and drops."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"

    def __getstate__(self) -> dict[str, Any]:
        # Shipped to remote workers unbound: each worker builds its own client and agents, so what
        # `setup` built is put back as it was before `bind`.
        state = dict(self.__dict__)
        for name, earlier in state.pop("_built_by_setup", {}).items():
            if earlier is _UNSET:
                state.pop(name, None)
            else:
                state[name] = earlier
        state.update(model=None, _agents={})
        return state


def _bound_agent(choice: Any, model: Any) -> Any:
    if isinstance(choice, type):
        return choice(model)
    bound_to = getattr(choice, "bound_to", None)
    if callable(bound_to):
        return bound_to(model)
    clone = copy.copy(choice)
    clone.client = model
    return clone


def _agent_fingerprint(choice: Any) -> Any:
    if isinstance(choice, type):
        fingerprint = getattr(choice, "class_fingerprint", None)
        return fingerprint() if callable(fingerprint) else {"class": choice.__qualname__}
    return getattr(choice, "fingerprint", {"class": type(choice).__qualname__})


__all__ = ["Row", "Stage", "StageError"]
