"""The stage contract: a stage maps rows to rows and declares what it reads and writes.

Every workload is stages on one runner: the generation pipeline's stages, and sampling,
labelling and evaluation. A stage knows nothing about concurrency, files, executors or resuming;
the engine runs it. A subclass sets `name`, `reads` and `writes`, implements
`process(row) -> ItemResult`, and puts every parameter that changes its results into `params()`
(they enter the run key). The agents it calls are declared when it is built
(``super().__init__(agents={"teacher": teacher or Teacher})``): a class or an instance per role,
fingerprinted for the run key without building anything.

A stage has two kinds of state, kept apart:

* its configuration, set in ``__init__``: plain, picklable data (settings, agent choices, model
  specs). It is what a stage is when it is pickled to a remote worker, copied or fingerprinted;
* its runtime objects, built where the stage runs: the model client, the agents over it, and
  whatever `load()` builds (an index, a bound grading policy, a nested stage's binding), held in
  the attributes the class names in `runtime`. They are never pickled.

The lifecycle, driven by the engine in every process that runs the stage:
``bind(model)`` (sets `model`, builds the declared agents, calls `load()`) → `prepare` and
`process` → ``close()`` (calls `unload()`, then drops every runtime object), also after a failure,
a stop or Ctrl-C. A remote worker receives the configuration and binds its own copy to its own
client, so `load()` runs there too.

Class flags tell the runner what a stage needs, instead of the runner asking what class it is:

* `requires_answers`: its input rows need a known answer (the seeds are checked before any call);
* `needs_whole_input`: `prepare(rows)` sees the whole input, in order, before `process` (dedup);
* `calls_model`: whether `process` calls a model (a stage that doesn't needs no client, batch
  submission or remote worker).
"""

from __future__ import annotations

import copy
import inspect
import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from orca_math.engine.items import ItemResult
from orca_math.errors import ConfigError

if TYPE_CHECKING:
    from autogen_core.models import ChatCompletionClient

    from orca_math.engine.estimate import EstimateContext, Population, StageEstimate

logger = logging.getLogger(__name__)

Row = dict[str, Any]
#: The runtime objects every stage has: its client, the agents built over it, and whether it is loaded.
_BASE_RUNTIME = ("model", "_agents", "_loaded")


class StageError(ConfigError):
    """A stage was configured wrongly, or its input lacks a field it reads."""


class Stage(ABC):
    """Base class of every stage.

    Subclasses override:
        * `process(row)` — required: turn one input row into an `ItemResult` (output rows and
          drops), or raise `ItemFailedError` with a reason;
        * `params()` — the settings that change results (default: none);
        * `load()` — build the runtime objects `process` needs, once the model is known
          (`self.model`, and the declared agents through `agent_for`, are ready); store them in
          attributes named in `runtime`. Default: nothing. Call ``super().load()`` when you
          subclass a stage that loads something itself;
        * `unload()` — release what `load` built that needs releasing (close a file, end a
          process, close a nested stage); a plain method or ``async def``. Default: nothing. The
          references in `runtime` are dropped afterwards either way;
        * `prepare(rows)` and `outdated(records)` — only with ``needs_whole_input = True``;
        * `estimate(population, context)` — calls, tokens and cost for dry runs (default: none
          for stages that call no model, "not estimated" for those that do);
        * `report(records)` — extra entries for the run's summary.

    Everything else is the engine's: `bind` and `close` drive the lifecycle (don't override them),
    and pickling keeps the configuration only. `setup()` is the deprecated name of `load()`: a
    subclass that overrides it still works, with a `DeprecationWarning`.

    Class attributes:
        name: the stage's name in run folders and summaries.
        reads: row fields the stage needs; checked on each row by `check_row`.
        writes: row fields the stage adds or changes.
        columns: which of `writes` become columns of a generated dataset, with their Python type.
        runtime: the attributes `load` builds. They are None until it runs and after `close`,
            never pickled (a remote worker loads its own), and not part of the configuration.
            Each class names its own; those of the base classes are added.
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
    runtime: ClassVar[tuple[str, ...]] = ()
    requires_answers: ClassVar[bool] = False
    needs_whole_input: ClassVar[bool] = False
    calls_model: ClassVar[bool] = True
    model: ChatCompletionClient | None  # runtime: set by `bind`

    def __init__(self, *, model: Any = None, agents: Mapping[str, Any] | None = None) -> None:
        self.model_spec = model
        self._agent_choices: dict[str, Any] = {role: choice for role, choice in (agents or {}).items() if choice is not None}
        self._unloaded()

    # ------------------------------------------------------------------ lifecycle

    def load(self) -> None:  # noqa: B027 -- optional hook
        """Build the runtime objects `process` needs; the engine calls it where the stage runs.

        `self.model` (the engine's managed client, or None for a stage that calls no model) and
        the declared agents are ready. Store what you build in attributes named in `runtime`, so
        that it is never pickled, and release it in `unload` if it holds a file, a process or a
        connection.
        """

    def unload(self) -> Any:
        """Release what `load` built that needs releasing; may be ``async def``.

        The engine calls it once the stage is done in a process: at the end of a run, and also
        after a failure, a stop or Ctrl-C. The attributes in `runtime` are set back to None after it.
        """
        return None

    def bind(self, model: ChatCompletionClient | None) -> None:
        """Give the stage its model (the engine's managed client) and load its runtime objects.

        The engine's side of the lifecycle: it builds the declared agents over `model`, then calls
        `load()`.
        """
        self.model = model
        self._agents = {role: _bound_agent(choice, model) for role, choice in self._agent_choices.items()}
        if _overrides(type(self), "close"):
            warnings.warn(f"{type(self).__qualname__} overrides close(), which is the engine's: override unload() "
                          "instead", DeprecationWarning, stacklevel=2)
        deprecated = _overrides(type(self), "setup")
        if deprecated:
            warnings.warn(f"{type(self).__qualname__}.setup() is deprecated: override load() instead (and name what "
                          "it builds in `runtime`, so that it is not pickled)", DeprecationWarning, stacklevel=2)
        try:
            self.setup() if deprecated else self.load()
        except BaseException:
            self._unloaded()  # half-built: nothing of it is used, and `close` has nothing to unload
            raise
        self._loaded = True

    def setup(self) -> None:
        """Deprecated: override `load` instead (this calls it)."""
        self.load()

    async def close(self) -> None:
        """Unload the stage (`unload`, awaited when it is a coroutine) and drop its runtime objects.

        The engine's side of the lifecycle; a stage that was never bound, or is closed already, has
        nothing to unload.
        """
        if not self._loaded:
            return
        try:
            released = self.unload()
            if inspect.isawaitable(released):
                await released
        finally:
            self._unloaded()

    @property
    def loaded(self) -> bool:
        """Whether the stage is bound and loaded (between `bind` and `close`)."""
        return self._loaded

    def _unloaded(self) -> None:
        for name in self._runtime_names():
            setattr(self, name, None)
        self._agents = {}
        self._loaded = False

    @classmethod
    def _runtime_names(cls) -> tuple[str, ...]:
        names = dict.fromkeys(_BASE_RUNTIME)
        for klass in reversed(cls.__mro__):
            names.update(dict.fromkeys(vars(klass).get("runtime", ())))
        return tuple(names)

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
        # The configuration only: the runtime objects belong to the process that loaded them, and a
        # remote worker binds its copy to its own client (see `bind`).
        runtime = self._runtime_names()
        return {name: value for name, value in self.__dict__.items() if name not in runtime}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._unloaded()


async def close_stages(stages: Iterable[Stage]) -> None:
    """Close every stage (see `Stage.close`); one that fails to unload is logged, and the others are still closed.

    A run's results stand when a stage cannot release what it loaded, so that failure is a warning,
    not the run's error (which may be on its way up already: a stop, Ctrl-C).
    """
    for stage in stages:
        try:
            await stage.close()
        except Exception as exc:
            logger.warning("stage %r could not unload: %s: %s", stage.name, type(exc).__name__, exc)


def _bound_agent(choice: Any, model: Any) -> Any:
    if isinstance(choice, type):
        return choice(model)
    bound_to = getattr(choice, "bound_to", None)
    if callable(bound_to):
        return bound_to(model)
    clone = copy.copy(choice)
    clone.client = model
    return clone


def _overrides(cls: type, method: str) -> bool:
    """Whether a subclass of `Stage` defines `method` itself."""
    return any(method in vars(klass) for klass in cls.__mro__ if klass is not Stage and issubclass(klass, Stage))


def _agent_fingerprint(choice: Any) -> Any:
    if isinstance(choice, type):
        fingerprint = getattr(choice, "class_fingerprint", None)
        return fingerprint() if callable(fingerprint) else {"class": choice.__qualname__}
    return getattr(choice, "fingerprint", {"class": type(choice).__qualname__})


__all__ = ["Row", "Stage", "StageError", "close_stages"]
