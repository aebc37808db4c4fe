"""The stage lifecycle: configuration in ``__init__``, runtime objects from `load()`, released by `unload()`.

Stages pickle as their configuration, load again wherever they are bound (a Ray worker too), and
are unloaded at the end of every run, whether it finished, failed or was stopped. A third-party
stage written against the deprecated `setup()` still runs, with a warning.
"""

from __future__ import annotations

import asyncio
import copy
import os
import pickle
import threading
import warnings
from pathlib import Path

import pytest

from orca_math.agents import Teacher
from orca_math.engine import Job, run_job
from orca_math.engine.config import EngineConfig
from orca_math.engine.items import ItemResult, RunStopped
from orca_math.engine.stage import Stage
from orca_math.evaluate.stages import AnswerStage, GradeStage
from orca_math.learn.sampling import SampleStage
from orca_math.pipeline import Decontaminate, Pipeline, Solve, Verify
from orca_math.pipeline.curation import Again
from orca_math.pipeline.difficulty import Difficulty
from orca_math.testing import ScriptedChatClient
from orca_math.testing.responders import pipeline_responder
from tests._ray_helpers import ray_cluster

ENGINE = EngineConfig.of(concurrency=2, progress=False, cache=False)
__all__ = ["ray_cluster"]  # the session fixture, imported for pytest
ITEMS = [{"id": f"q{i}", "question": f"What is {i} plus 2?"} for i in range(4)]


class Lookup:
    """A runtime object that must not travel: it holds a lock, which does not pickle."""

    def __init__(self, pid: int) -> None:
        self.lock = threading.Lock()
        self.pid = pid
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Tagging(Stage):
    """Tags each row with where its `Lookup` was loaded; records its lifecycle in `events`."""

    name = "tag"
    writes = ("loaded_in",)
    runtime = ("lookup",)
    calls_model = False

    def __init__(self, events: list[str] | None = None, *, fail_on: str | None = None) -> None:
        super().__init__()
        self.events = events if events is not None else []
        self.fail_on = fail_on

    def load(self) -> None:
        self.lookup = Lookup(os.getpid())
        self.events.append("load")

    def unload(self) -> None:
        self.lookup.close()
        self.events.append("unload")

    async def process(self, row):
        if row["id"] == self.fail_on:
            raise RunStopped("the endpoint refused every request")  # a fatal error: the run stops
        return ItemResult(outputs=[{**row, "loaded_in": self.lookup.pid}])


def run_stages(stages, out: Path, *, model=None):
    job = Job("lifecycle", stages, total=len(ITEMS))
    return asyncio.run(run_job(job, lambda: ITEMS, out=out, model=model, engine=ENGINE))


# ---------------------------------------------------------------- pickling


def test_a_loaded_stage_pickles_as_its_configuration_and_loads_again_where_it_is_bound():
    stage = Tagging(fail_on="q9")
    stage.bind(None)
    assert stage.loaded and isinstance(stage.lookup, Lookup)
    copied = pickle.loads(pickle.dumps(stage))  # the lock would not pickle: the Lookup stays behind
    assert copied.lookup is None and copied.model is None and not copied.loaded
    assert copied.fail_on == "q9" and copied.fingerprint() == stage.fingerprint()
    copied.bind(None)
    assert isinstance(copied.lookup, Lookup) and copied.lookup is not stage.lookup
    assert stage.lookup.pid == os.getpid()  # the original is untouched
    asyncio.run(copied.close())
    assert copied.lookup is None and not copied.loaded


@pytest.mark.parametrize("make", [
    lambda: Solve(k=2),
    lambda: Verify("program"),
    lambda: AnswerStage(),
    lambda: GradeStage(mode="llm"),
    lambda: SampleStage(sampling={"temperature": 0.7}),
    lambda: Difficulty("openai:gpt-4o-mini", k=2),
    lambda: Again(Solve(), 1),
], ids=["solve", "verify", "answer", "grade", "sample", "difficulty", "again"])
def test_every_shipped_stage_pickles_without_its_client_agents_or_runtime_objects(make):
    stage = make()
    client = ScriptedChatClient([])
    stage.bind(client)
    # The client is in the stage's runtime; holding it makes the client part of the pickled state.
    client.lock = threading.Lock()
    shipped = pickle.dumps(stage)  # a lock anywhere in the runtime objects would make this fail
    copied = pickle.loads(shipped)
    assert not copied.loaded and copied.model is None and copied.agents() == []
    assert all(getattr(copied, name) is None for name in type(copied).runtime)
    assert copied.fingerprint() == stage.fingerprint()
    copied.bind(ScriptedChatClient([]))  # a worker loads its own
    assert copied.loaded and len(copied.agents()) == len(stage.agents())
    for one in (stage, copied):
        asyncio.run(one.close())
        assert not one.loaded and one.model is None


def test_a_deep_copy_of_a_loaded_stage_is_unloaded():
    stage = Tagging()
    stage.bind(None)
    assert copy.deepcopy(stage).lookup is None


# ---------------------------------------------------------------- unload at the end of every run


def test_unload_runs_once_at_the_end_of_a_run(tmp_path):
    events: list[str] = []
    stage = Tagging(events)
    finished = run_stages([stage], tmp_path)
    rows = [record["outputs"][0] for record in finished.records("tag")]
    assert [row["loaded_in"] for row in rows] == [os.getpid()] * len(ITEMS)
    assert events == ["load", "unload"]
    assert stage.lookup is None and not stage.loaded


def test_unload_runs_when_the_run_stops(tmp_path):
    events: list[str] = []
    stage = Tagging(events, fail_on="q1")
    with pytest.raises(RunStopped, match="refused every request"):
        run_stages([stage], tmp_path)
    assert events == ["load", "unload"] and not stage.loaded


def test_unload_runs_for_the_stages_loaded_before_one_failed_to_load(tmp_path):
    events: list[str] = []

    class Broken(Tagging):
        name = "broken"

        def load(self) -> None:
            raise OSError("the index file is missing")

    first, broken = Tagging(events), Broken([])
    with pytest.raises(OSError, match="index file"):
        run_stages([first, broken], tmp_path)
    assert events == ["load", "unload"]
    assert not broken.loaded and broken.events == []  # never loaded, so nothing to unload


def test_a_failing_unload_is_a_warning_and_the_other_stages_are_still_unloaded(tmp_path, caplog):
    events: list[str] = []

    class Leaky(Tagging):
        name = "leaky"

        def unload(self) -> None:
            raise RuntimeError("the file was gone already")

    leaky, second = Leaky([]), Tagging(events)
    finished = run_stages([leaky, second], tmp_path)
    assert finished.funnel.stages[-1].outputs == len(ITEMS)  # the run's results stand
    assert events == ["load", "unload"] and not leaky.loaded and leaky.lookup is None
    assert "stage 'leaky' could not unload: RuntimeError: the file was gone already" in caplog.text


def test_an_async_unload_is_awaited(tmp_path):
    class AsyncUnload(Tagging):
        async def unload(self) -> None:
            await asyncio.sleep(0)
            self.events.append("unloaded asynchronously")

    stage = AsyncUnload()
    run_stages([stage], tmp_path)
    assert stage.events == ["load", "unloaded asynchronously"]


def test_a_dry_run_unloads_what_it_loaded(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"id": "s1", "question": "Sam has 3 apples and buys 2 more. How many now?", "answer": "5"}\n')
    decontaminate = Decontaminate(benchmarks=["svamp"], benchmarks_dir=os.environ["ORCA_MATH_BENCHMARKS_DIR"])
    pipeline = Pipeline([Solve(), decontaminate], model=ScriptedChatClient(responder=pipeline_responder), engine=ENGINE)
    assert pipeline.estimate(seeds).calls > 0
    assert all(not stage.loaded for stage in pipeline.stages) and decontaminate.decontaminator is None


def test_a_dry_run_with_a_failing_unload_warns_and_still_unloads_the_other_stages(tmp_path, caplog):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"id": "s1", "question": "Sam has 3 apples and buys 2 more. How many now?", "answer": "5"}\n')

    class Leaky(Tagging):
        name = "leaky"

        def unload(self) -> None:
            raise RuntimeError("the file was gone already")

    events: list[str] = []
    leaky, second = Leaky([]), Tagging(events)
    pipeline = Pipeline([leaky, second], model=ScriptedChatClient(responder=pipeline_responder), engine=ENGINE)
    estimate = pipeline.estimate(seeds)  # the estimate stands, as a run's results do
    assert [stage["name"] for stage in estimate.to_dict()["stages"]] == ["leaky", "tag"]
    assert events == ["load", "unload"] and not leaky.loaded and not second.loaded
    assert "stage 'leaky' could not unload: RuntimeError: the file was gone already" in caplog.text


# ---------------------------------------------------------------- third-party stages


def test_a_third_party_stage_with_only_load_runs_in_a_pipeline(tmp_path):
    class Vocabulary(Stage):
        """Counts the words of each question that a vocabulary (loaded once) knows."""

        name = "vocabulary"
        writes = ("known_words",)
        calls_model = False

        def load(self):
            self.words = {"what", "is", "plus"}

        async def process(self, row):
            known = sum(word.strip("?").lower() in self.words for word in row["question"].split())
            return ItemResult(outputs=[{**row, "known_words": known}])

    finished = run_stages([Vocabulary()], tmp_path)
    assert [record["outputs"][0]["known_words"] for record in finished.records("vocabulary")] == [3] * len(ITEMS)


def test_a_stage_written_for_setup_still_runs_with_a_deprecation_warning(tmp_path):
    class Shouting(Stage):
        """Asks its declared teacher in capitals: the pre-`load` way, building its prompt in `setup`."""

        name = "shout"
        writes = ("answer",)

        def __init__(self):
            super().__init__(agents={"teacher": Teacher})

        def setup(self):
            super().setup()
            self.teacher = self.agent_for("teacher")  # the declared agents are built before setup
            self.prefix = "LOUDLY: "

        async def process(self, row):
            result = await self.teacher.call(question=self.prefix + row["question"])
            return ItemResult(outputs=[{**row, "answer": result.output.final_answer}], usage=result.usage)

    client = ScriptedChatClient(responder=lambda messages: "It is small.\nFinal answer: 7")
    with pytest.warns(DeprecationWarning, match=r"Shouting\.setup\(\) is deprecated: override load\(\)"):
        finished = run_stages([Shouting()], tmp_path, model=client)
    assert [record["outputs"][0]["answer"] for record in finished.records("shout")] == ["7"] * len(ITEMS)
    assert all("LOUDLY: " in str(call["messages"][-1]) for call in client.calls)


def test_a_stage_that_overrides_close_still_closes_with_a_deprecation_warning(tmp_path):
    class ClosesItself(Tagging):
        async def close(self) -> None:
            self.events.append("closed by hand")
            await super().close()

    stage = ClosesItself()
    with pytest.warns(DeprecationWarning, match=r"overrides close\(\), which is the engine's: override unload\(\)"):
        run_stages([stage], tmp_path)
    assert stage.events == ["load", "closed by hand", "unload"] and not stage.loaded


def test_the_shipped_stages_use_no_deprecated_hook(tmp_path):
    stages = [Solve(), Verify("program"), GradeStage(mode="llm"), SampleStage(sampling={}), Difficulty(ScriptedChatClient([]), k=1),
              Again(Solve(), 1), Decontaminate(benchmarks=["svamp"], benchmarks_dir=os.environ["ORCA_MATH_BENCHMARKS_DIR"])]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for stage in stages:
            stage.bind(ScriptedChatClient([]))
            asyncio.run(stage.close())


# ---------------------------------------------------------------- on Ray workers


class AskingWithLookup(Stage):
    """Calls the model, with a runtime object that cannot be pickled; `unload` leaves a mark per process."""

    name = "ask"
    writes = ("reply", "loaded_in")
    runtime = ("lookup",)

    def __init__(self, marks: Path) -> None:
        super().__init__()
        self.marks = str(marks)

    def load(self) -> None:
        self.lookup = Lookup(os.getpid())

    def unload(self) -> None:
        Path(self.marks, f"unloaded-{os.getpid()}").touch()

    async def process(self, row):
        from autogen_core.models import UserMessage

        reply = await self.model.create([UserMessage(content=row["question"], source="user")])
        return ItemResult(outputs=[{**row, "reply": reply.content, "loaded_in": self.lookup.pid}])


@pytest.mark.timeout(240)
def test_a_stage_reaches_ray_workers_as_its_configuration_and_loads_and_unloads_there(ray_cluster, tmp_path):
    from orca_math.testing.fault_server import FaultConfig, FaultServer
    from tests._ray_helpers import ray_executor

    marks = tmp_path / "marks"
    marks.mkdir()
    stage = AskingWithLookup(marks)
    with FaultServer(FaultConfig(reply=lambda messages: "Final answer: 4")) as server:
        job = Job("ask", [stage], total=len(ITEMS))
        finished = asyncio.run(run_job(job, lambda: ITEMS, out=tmp_path / "run", model=server.base_url, engine=ENGINE,
                                       executor=ray_executor()))
    rows = [record["outputs"][0] for record in finished.records("ask")]
    assert [row["reply"] for row in rows] == ["Final answer: 4"] * len(ITEMS)
    workers = {row["loaded_in"] for row in rows}
    assert os.getpid() not in workers  # loaded in the workers: the driver's Lookup (and its lock) never travelled
    assert {f"unloaded-{pid}" for pid in workers} <= {mark.name for mark in marks.iterdir()}  # each worker unloaded it
    assert f"unloaded-{os.getpid()}" in {mark.name for mark in marks.iterdir()} and not stage.loaded  # and the driver its own
