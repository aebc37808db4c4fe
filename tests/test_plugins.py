"""Plug-ins from another installed package: a model spec kind, a batch backend and an executor.

The package is real as far as Python can tell: a module and a ``*.dist-info`` folder with an
``entry_points.txt`` on `sys.path`, found by `importlib.metadata` exactly as a pip-installed one is.
Each plug-in is then used through the command line, with no change to orca-math.
"""

from __future__ import annotations

import json
import logging
import sys
import textwrap

import pytest

from orca_math.cli import main
from orca_math.models.specs import SPEC_KINDS
from orca_math.registries import BATCH_BACKENDS, EXECUTORS
from orca_math.testing.batch_server import BatchServer
from tests._batch_helpers import MODEL, write_seeds

REGISTRIES = (SPEC_KINDS, BATCH_BACKENDS, EXECUTORS)

PLUGIN_MODULE = '''
"""A third-party package's orca-math plug-ins (written by tests/test_plugins.py)."""

from orca_math.engine.batch.backends.openai import OpenAIBatchBackend
from orca_math.engine.executors import LocalExecutor
from orca_math.plugins import Plugin
from orca_math.testing import ScriptedChatClient
from orca_math.testing.responders import pipeline_responder

USED = []


def scripted_spec(rest, **options):
    """scripted:<name>, an offline stand-in teacher."""
    USED.append(("spec", rest))
    return ScriptedChatClient(responder=pipeline_responder, model=f"scripted-{rest}")


class CountingExecutor(LocalExecutor):
    """This process, counting the steps it runs."""

    name = "counting"

    def __init__(self, workers=None):
        super().__init__()
        USED.append(("executor", workers))

    async def run(self, task):
        USED.append(("step", task.name))
        await super().run(task)


class RelayBackend(OpenAIBatchBackend):
    name = "relay"


def _relay(target, options):
    USED.append(("backend", target.identity.name))
    return RelayBackend(target.client, model=target.identity.name)


RELAY = Plugin(name="ignored: the entry point names it", factory=_relay, help="an OpenAI batch API behind a relay")
'''

ENTRY_POINTS = """
[orca_math.model_specs]
scripted = fake_orca_plugin:scripted_spec

[orca_math.batch_backends]
relay = fake_orca_plugin:RELAY

[orca_math.executors]
counting = fake_orca_plugin:CountingExecutor
"""


@pytest.fixture
def plugin_package(tmp_path, monkeypatch):
    """Install the fake plug-in package on sys.path; the registries read it afresh, and forget it after."""
    site = tmp_path / "site"
    dist = site / "fake_orca_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "fake_orca_plugin.py").write_text(textwrap.dedent(PLUGIN_MODULE), encoding="utf-8")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-orca-plugin\nVersion: 0.1\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS, encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    for registry in REGISTRIES:
        registry.rediscover()
    import fake_orca_plugin

    yield fake_orca_plugin
    monkeypatch.undo()
    sys.modules.pop("fake_orca_plugin", None)
    for registry in REGISTRIES:
        registry.rediscover()


def test_the_registries_list_the_plugins_after_their_own(plugin_package):
    assert SPEC_KINDS.names()[-1] == "scripted" and SPEC_KINDS.get("scripted").source == "fake-orca-plugin"
    assert BATCH_BACKENDS.names() == ["openai", "azure", "anthropic", "vllm", "relay"]
    assert BATCH_BACKENDS.get("relay").help == "an OpenAI batch API behind a relay"
    assert EXECUTORS.names() == ["local", "ray", "counting"]


def test_a_plugin_spec_kind_and_executor_run_solve_through_the_cli(plugin_package, tmp_path, capsys):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 3, answers=False)
    out = tmp_path / "solved.jsonl"
    code = main(["solve", "--seeds", str(seeds), "--out", str(out), "--model", "scripted:teacher",
                 "--executor", "counting", "--workers", "2", "--no-progress", "--no-cache"])
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and all(row["answer"] for row in rows)
    used = plugin_package.USED
    assert ("spec", "teacher") in used and ("executor", 2) in used
    assert any(kind == "step" for kind, _ in used)  # the items ran on the plug-in executor


def test_generate_records_the_plugin_executor_in_its_recipe(plugin_package, tmp_path, capsys):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 2)
    out = tmp_path / "data"
    code = main(["generate", "--seeds", str(seeds), "--out", str(out), "--model", "scripted:teacher",
                 "--executor", "counting", "--rounds", "1", "--no-progress", "--no-cache", "--no-decontaminate"])
    assert code == 0, capsys.readouterr().err
    recipe = (out / "recipe.yaml").read_text(encoding="utf-8")
    assert "name: counting" in recipe and "spec: scripted:teacher" in recipe
    assert main(["run", str(out / "recipe.yaml"), "--out", str(tmp_path / "again")]) == 0, capsys.readouterr().err
    assert plugin_package.USED.count(("spec", "teacher")) >= 2  # the recorded recipe ran on the plug-ins again


def test_a_plugin_batch_backend_is_chosen_by_name_through_the_cli(plugin_package, tmp_path, capsys):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 4, answers=False)
    out = tmp_path / "solved.jsonl"
    with BatchServer() as server:
        code = main(["solve", "--seeds", str(seeds), "--out", str(out), "--model", server.base_url,
                     "--model-name", MODEL, "--no-progress", "--batch", "--batch-backend", "relay",
                     "--batch-poll-seconds", "0.01"])
        assert code == 0, capsys.readouterr().err
        assert len(server.created_batches()) == 1
    assert ("backend", MODEL) in plugin_package.USED
    assert len(out.read_text().splitlines()) == 4


def test_help_and_errors_name_the_plugins(plugin_package, capsys):
    with pytest.raises(SystemExit):
        main(["solve", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "{local,ray,counting}" in shown and "auto,openai,azure,anthropic,vllm,relay" in shown
    assert main(["solve", "--seeds", "x.jsonl", "--out", "o.jsonl", "--model", "nosuch:thing"]) == 2
    err = capsys.readouterr().err
    assert "Unknown model spec 'nosuch:thing'" in err and "scripted:<name>, an offline stand-in teacher, or pass" in err


def test_without_the_package_its_names_are_refused_in_one_sentence(tmp_path, capsys):
    assert main(["solve", "--seeds", "x.jsonl", "--out", "o.jsonl", "--executor", "counting"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'counting' (choose from 'local', 'ray')" in err and len(err.strip().splitlines()) == 1


def test_a_broken_plugin_is_skipped_with_a_warning_naming_it(tmp_path, monkeypatch, caplog):
    site = tmp_path / "site"
    dist = site / "broken_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text("[orca_math.executors]\nslurm = no_such_module:Executor\n"
                                           "ray = no_such_module:Other\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    EXECUTORS.rediscover()
    try:
        with caplog.at_level(logging.WARNING, logger="orca_math.plugins"):
            assert EXECUTORS.get("local").source == "orca-math"
            assert caplog.text == ""  # a built-in name is found without reading (or loading) any plug-in
            assert EXECUTORS.names() == ["local", "ray"]
        text = caplog.text
        assert "'slurm' from broken-plugin" in text and "no_such_module" in text
        assert "Ignored the executor 'ray' from broken-plugin" in text  # a built-in is never replaced
    finally:
        monkeypatch.undo()
        EXECUTORS.rediscover()
