"""A checkpoint that only the executor's workers load is not loaded on the driver as well.

Without this, `--executor ray` with a ``vllm:`` model built one engine per worker and one more in
the driver, which then held a GPU no call used (docs/ray.md's old "known limitation").
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json

import pytest

from orca_math.cli.learn import CheckpointSampler
from orca_math.engine.executors import Executor
from orca_math.engine.items import ItemFailedError
from orca_math.learn.sampling import sample_responses
from orca_math.models import ModelRef
from orca_math.models.errors import ModelError
from orca_math.models.identity import checkpoint_fingerprint, identity_of
from orca_math.models.vllm import VLLMChatCompletionClient
from orca_math.models.worker_loaded import WorkerLoadedModel, worker_loaded_model


@pytest.fixture
def checkpoint(tmp_path):
    folder = tmp_path / "iteration-1" / "model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (folder / "model.safetensors").write_bytes(b"weights")
    return folder


@pytest.fixture
def no_engine(monkeypatch):
    """Building a vLLM engine in this process fails the test."""
    def refuse(self, *args, **kwargs):
        raise AssertionError("the driver built a vLLM engine")

    monkeypatch.setattr(VLLMChatCompletionClient, "__init__", refuse)


def test_the_stand_in_names_the_checkpoint_as_the_workers_engine_would(checkpoint):
    stand_in = worker_loaded_model(f"vllm:{checkpoint}")
    identity = identity_of(stand_in)
    assert isinstance(stand_in, WorkerLoadedModel)
    assert (identity.name, identity.provider) == ("model", "vllm")
    assert identity.checkpoint == checkpoint_fingerprint(checkpoint)  # run keys change with the weights
    assert identity.supports_seed  # GPU engines take a per-request seed: k samples differ reproducibly
    assert identity_of(worker_loaded_model(f"hf:{checkpoint}")).provider == "hf"


@pytest.mark.parametrize("spec", ["openai:gpt-4o-mini", "http://127.0.0.1:8000/v1", "vllm-serve:./ckpt", "local", "vllm:", None])
def test_cheap_or_lazy_models_are_built_on_the_driver_as_before(spec):
    assert worker_loaded_model(spec) is None


def test_calling_the_stand_in_says_where_the_model_runs(checkpoint):
    stand_in = worker_loaded_model(f"vllm:{checkpoint}")
    with pytest.raises(ModelError, match="loaded by the executor's workers"):
        asyncio.run(stand_in.create([]))


class _Elsewhere(Executor):
    """Stands for a remote executor: records what it was handed and fails each item."""

    name = "elsewhere"
    loads_models_here = False

    def __init__(self) -> None:
        self.handed: list[tuple[object, object]] = []

    async def run(self, task):
        self.handed.append((task.remote.model, task.remote.stage.model))
        for item in task.items:
            task.record(item, ItemFailedError("not run in this test"))


def test_a_remote_executor_gets_the_spec_and_the_driver_loads_nothing(checkpoint, tmp_path, no_engine):
    executor = _Elsewhere()
    problems = [{"id": "p1", "question": "What is 2 + 2?", "answer": "4"}]
    asyncio.run(sample_responses(f"vllm:{checkpoint}", problems, k=2, out=tmp_path / "samples", executor=executor,
                                 progress=False))
    (shipped, bound), = executor.handed
    # What the workers build their engines from: the spec, in the Orca format the loop samples in.
    assert shipped == ModelRef(f"vllm:{checkpoint}", prompt_format="orca", max_new_tokens=1024)
    assert isinstance(bound, WorkerLoadedModel)


def test_the_cli_builds_no_model_and_only_a_local_run_loads_it_on_the_driver(checkpoint, tmp_path, no_engine):
    args = argparse.Namespace(model=str(checkpoint), sampler="vllm", prompt_format="chat", max_tokens=64)
    ref = CheckpointSampler(args)(checkpoint)  # no engine is built here (no_engine)
    assert ref == ModelRef(f"vllm:{checkpoint}", prompt_format="chat", max_new_tokens=64)
    problems = [{"id": "p1", "question": "What is 2 + 2?", "answer": "4"}]
    executor = _Elsewhere()
    asyncio.run(sample_responses(ref, problems, k=1, out=tmp_path / "ray", executor=executor, progress=False))
    (shipped, bound), = executor.handed
    assert shipped == ref  # the workers build it with the CLI's options (the ref's own win over the loop's defaults)
    assert isinstance(bound, WorkerLoadedModel)
    with pytest.raises(AssertionError, match="the driver built a vLLM engine"):  # locally the engine builds it, here
        asyncio.run(sample_responses(ref, problems, k=1, out=tmp_path / "local", progress=False))


def test_learn_in_chat_format_builds_vllm_samplers_with_options_the_client_takes(checkpoint):
    args = argparse.Namespace(model=str(checkpoint), sampler="vllm", prompt_format="chat", max_tokens=300, executor="local")
    sampler = CheckpointSampler(args)
    ref = sampler(checkpoint)
    assert ref.spec == f"vllm:{checkpoint}" and sampler.batched
    inspect.signature(VLLMChatCompletionClient).bind(str(checkpoint), **ref.options)  # it used to pass max_tokens=
    assert ref.options["max_new_tokens"] == 300
