"""Modules that moved (CHANGELOG.md): documented old paths warn and still work for one release; the rest are gone."""

from __future__ import annotations

import importlib
import sys

import pytest


@pytest.mark.parametrize(("old", "new", "name"), [
    ("orca_math.engine.ray_executor", "orca_math.engine.executors.ray", "RayExecutor"),
    ("orca_math.card", "orca_math.dataset_card", "build_card"),
])
def test_a_documented_old_path_warns_and_gives_the_same_object(old, new, name):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)


@pytest.mark.parametrize("old", [
    "orca_math.engine.run", "orca_math.pipeline.stages", "orca_math.pipeline.estimate", "orca_math.pipeline.summary",
    "orca_math.pipeline.stage", "orca_math.engine.ray_worker", "orca_math.engine.ray_limits", "orca_math.engine.batch.client",
])
def test_shims_deprecated_in_the_last_release_and_undocumented_paths_are_gone(old):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(old)


def test_importing_the_executors_and_their_ray_package_does_not_import_ray():
    import subprocess

    code = ("import sys, orca_math.engine.executors, orca_math.engine.executors.ray, orca_math.engine.executors.remote, "
            "orca_math.engine.executors.ledgers; print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
