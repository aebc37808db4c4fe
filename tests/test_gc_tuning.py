"""The collector settings a run applies are undone afterwards, also when runs nest or fail."""

from __future__ import annotations

import asyncio
import gc

import pytest

from orca_math.engine.checkpoint import CheckpointFile
from orca_math.engine.gc_tuning import RUN_GEN0_THRESHOLD, tuned_gc
from orca_math.engine.runner import ItemResult, run_items


@pytest.fixture(autouse=True)
def _clean_gc_state():
    before = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)
    gc.enable()


def test_settings_apply_inside_and_are_restored_after():
    gc.set_threshold(700, 10, 10)
    with tuned_gc():
        assert gc.get_threshold() == (RUN_GEN0_THRESHOLD, 10, 10)
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_nested_runs_restore_only_when_the_outer_one_ends():
    gc.set_threshold(900, 11, 12)
    with tuned_gc():
        with tuned_gc():
            pass
        assert gc.get_threshold()[0] == RUN_GEN0_THRESHOLD, "the inner run must not undo the outer run's settings"
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (900, 11, 12) and gc.get_freeze_count() == 0


def test_a_higher_threshold_set_by_the_user_is_kept():
    gc.set_threshold(RUN_GEN0_THRESHOLD * 2, 10, 10)
    with tuned_gc():
        assert gc.get_threshold()[0] == RUN_GEN0_THRESHOLD * 2


def test_a_process_that_froze_objects_itself_keeps_them_frozen():
    gc.freeze()
    frozen = gc.get_freeze_count()
    with tuned_gc():
        pass
    assert gc.get_freeze_count() == frozen


def test_disabled_or_switched_off_leaves_the_collector_alone():
    gc.set_threshold(700, 10, 10)
    with tuned_gc(enabled=False):
        assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == 0
    gc.disable()
    with tuned_gc():
        assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == 0


def test_run_items_restores_the_collector_when_an_item_raises_out_of_the_run(tmp_path):
    gc.set_threshold(700, 10, 10)
    seen: list[tuple[int, int, int]] = []

    async def process(item):
        seen.append(gc.get_threshold())
        if item["id"] == "b":
            raise KeyboardInterrupt  # not an Exception: it ends the run instead of failing the item
        return ItemResult(outputs=[item])

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(run_items("s", [{"id": "a"}, {"id": "b"}], process, CheckpointFile(tmp_path / "c.jsonl"), concurrency=1))
    assert seen[0][0] == RUN_GEN0_THRESHOLD
    assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == 0


def test_run_items_can_leave_the_collector_as_it_is(tmp_path):
    gc.set_threshold(700, 10, 10)
    seen: list[tuple[int, int, int]] = []

    async def process(item):
        seen.append(gc.get_threshold())
        return ItemResult(outputs=[item])

    asyncio.run(run_items("s", [{"id": "a"}], process, CheckpointFile(tmp_path / "c.jsonl"), tune_gc=False))
    assert seen == [(700, 10, 10)]
