"""A model travels down as a `ModelRef` (spec + options), and clients are built only where calls are made.

Unit tests of the reference itself, one real run through the local engine against a loopback
fault server (the key never reaches a written file), and the Ray executor's one-sentence refusal
of a ready client that cannot travel (the session's local cluster, tests/_ray_helpers.py).
"""

from __future__ import annotations

import json
import pickle
import threading

import pytest

from orca_math._sync import run_sync
from orca_math.engine.config import Engine, EngineConfig
from orca_math.errors import ConfigError
from orca_math.models import ModelRef, as_model, describe_spec, identity_of
from orca_math.models.errors import ModelSpecError
from orca_math.pipeline import Pipeline, Solve
from orca_math.testing import ScriptedChatClient
from orca_math.testing.fault_server import FaultConfig, FaultServer
from orca_math.testing.responders import pipeline_responder
from tests._ray_helpers import agent_reply, ray_cluster, ray_executor, write_seeds

__all__ = ["ray_cluster"]  # the session fixture, imported for pytest

SECRET = "sk-model-ref-secret-0042"


def test_a_ref_pickles_and_compares_by_spec_and_options():
    ref = ModelRef("http://127.0.0.1:8000/v1/", model="qwen", prompt_format="chat")
    assert pickle.loads(pickle.dumps(ref)) == ref
    assert ref == ModelRef("http://127.0.0.1:8000/v1/", {"prompt_format": "chat"}, model="qwen")
    assert ref != ModelRef("http://127.0.0.1:8000/v1/", model="other")
    assert {ref: 1}[ModelRef("http://127.0.0.1:8000/v1/", {"model": "qwen", "prompt_format": "chat"})] == 1
    # A ref without options is its spec: what a plain string always meant.
    assert ModelRef("local") == "local" and hash(ModelRef("local")) == hash("local")
    assert ModelRef("local") != ModelRef("local", n_ctx=2048)


def test_a_ref_is_frozen_and_its_options_are_a_copy():
    ref = ModelRef("openai:gpt-4o-mini", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(AttributeError, match="frozen"):
        ref.spec = "openai:gpt-4o"  # type: ignore[misc]
    ref.options["base_url"] = "http://elsewhere/v1"
    assert ref.options == {"base_url": "http://127.0.0.1:9/v1"}
    assert ref.with_options(model="m").options == {"base_url": "http://127.0.0.1:9/v1", "model": "m"}
    assert ref.with_defaults({"base_url": "http://x/v1", "timeout": 5}).options == {"base_url": "http://127.0.0.1:9/v1",
                                                                                    "timeout": 5}


def test_no_secret_shows_in_its_repr_description_or_text():
    ref = ModelRef("http://alice:hunter2-pass@127.0.0.1:8000/v1", model="qwen", api_key=SECRET, transport="httpx")
    for shown in (repr(ref), str(ref), ref.describe(), describe_spec(ref)):
        assert SECRET not in shown and "hunter2-pass" not in shown, shown
    assert "api_key='***'" in repr(ref)
    # The description names what changes replies (the served model), not how calls go (transport) nor keys.
    assert ref.describe() == 'http://127.0.0.1:8000/v1 {"model": "qwen"}'
    assert ModelRef("http://127.0.0.1:8000/v1/").describe() == describe_spec("http://127.0.0.1:8000/v1")


def test_bad_refs_are_refused_in_one_sentence():
    with pytest.raises(ModelSpecError, match="non-empty string") as empty:
        ModelRef("  ")
    with pytest.raises(ModelSpecError, match="azure_ad_token_provider.*cannot travel.*load_model") as provider:
        ModelRef("azure:gpt-4o", azure_ad_token_provider=lambda: "token")
    with pytest.raises(ModelSpecError, match="Unknown model spec 'nosuch:thing'") as unknown:  # at once, not where it is built
        ModelRef("nosuch:thing")
    for error in (empty, provider, unknown):
        assert "\n" not in str(error.value)


def test_build_is_load_model_with_the_options():
    client = ModelRef("http://127.0.0.1:9/v1", model="served-name").build()
    try:
        assert identity_of(client).describe() == "served-name at http://127.0.0.1:9/v1"
    finally:
        run_sync(client.close())


def test_as_model_makes_specs_refs_and_keeps_clients():
    client = ScriptedChatClient(responder=pipeline_responder)
    assert as_model(client, prompt_format="orca") is client
    assert as_model(None) is None
    assert as_model("hf:ckpt", prompt_format="orca") == ModelRef("hf:ckpt", prompt_format="orca")
    # The ref's own options win over a job's defaults.
    assert as_model(ModelRef("hf:ckpt", prompt_format="chat"), prompt_format="orca", max_new_tokens=8).options == {
        "prompt_format": "chat", "max_new_tokens": 8}
    assert isinstance(Pipeline([Solve()], model="openai:gpt-4o-mini").model_spec, ModelRef)


def test_the_engine_builds_one_client_per_ref_and_closes_what_it_built():
    engine = Engine(EngineConfig.of(progress=False, cache=False))
    first = engine.client(ModelRef("http://127.0.0.1:9/v1", model="m"))
    assert engine.client(ModelRef("http://127.0.0.1:9/v1", {"model": "m"})) is first
    assert engine.client(ModelRef("http://127.0.0.1:9/v1", model="other")) is not first
    run_sync(engine.close())
    assert engine._clients == {}


def test_a_local_run_with_a_key_in_its_ref_writes_the_key_nowhere(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 3)
    with FaultServer(FaultConfig(api_key=SECRET, reply=agent_reply)) as server:
        ref = ModelRef(server.base_url, model="fault-model", api_key=SECRET)
        result = Pipeline([Solve()], model=ref, progress=False, concurrency=2).run_sync(seeds, out=tmp_path / "out")
        asked = len(server.chat_requests())
    assert result.funnel.final_rows == 3 and asked == 3  # the key reached the server: the calls were answered
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["config"]["model"] == f'{server.base_url} {{"model": "fault-model"}}'
    written = [path for path in (tmp_path / "out").rglob("*") if path.is_file() and SECRET in path.read_text(errors="ignore")]
    assert written == []


class _HeldClient(ScriptedChatClient):
    """A ready client holding a lock: it cannot be pickled, so it cannot travel to a worker."""

    def __init__(self) -> None:
        super().__init__(responder=pipeline_responder)
        self.lock = threading.Lock()


@pytest.mark.timeout(240)
def test_a_ready_client_runs_locally_and_ray_refuses_one_that_cannot_travel_in_one_sentence(ray_cluster, tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 2)
    local = Pipeline([Solve()], model=_HeldClient(), progress=False).run_sync(seeds, out=tmp_path / "local")
    assert local.funnel.final_rows == 2
    with pytest.raises(ConfigError) as refused:
        Pipeline([Solve()], model=_HeldClient(), progress=False, executor=ray_executor()).run_sync(seeds, out=tmp_path / "ray")
    message = str(refused.value)
    assert "\n" not in message and "_HeldClient" in message and "cannot be pickled" in message
    assert "ModelRef(" in message and "local executor" in message


def test_a_recipe_takes_its_own_ref_beside_it_and_refuses_another():
    from orca_math.evaluate import evaluate_sync
    from orca_math.recipes import recipe_from_mapping

    evaluation = recipe_from_mapping({"kind": "eval", "model": {"spec": "http://127.0.0.1:9/v1", "name": "m"}})
    generation = recipe_from_mapping({"kind": "generate", "seeds": {"path": "s.jsonl"},
                                      "model": {"spec": "http://127.0.0.1:9/v1", "name": "m"}})
    for recipe in (evaluation, generation):
        assert recipe.model.ref() == ModelRef("http://127.0.0.1:9/v1", model="m")
    assert Pipeline(recipe=generation, model=ModelRef("http://127.0.0.1:9/v1", model="m")).model_spec == generation.model.ref()
    with pytest.raises(ConfigError, match="takes model from the recipe"):
        Pipeline(recipe=generation, model=ModelRef("http://127.0.0.1:9/v1", model="other"))
    with pytest.raises(ConfigError, match="takes model from the recipe"):
        evaluate_sync(ModelRef("http://127.0.0.1:9/v1", model="other"), recipe=evaluation)
