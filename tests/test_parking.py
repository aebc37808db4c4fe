"""Items whose call only waits (a retry's back-off, a hung request) give their worker to another item.

Before, the local executor ran `concurrency` items, one per worker, and an item whose call sat out
a back-off kept its worker though its concurrency slot was free: under faults the run idled.
Driven on a virtual clock (tests/_virtual_time.py): the timeline depends on nothing but the code.
"""

from __future__ import annotations

import asyncio
from typing import Any

from autogen_core.models import UserMessage

from orca_math.engine import ManagedClient, RetryPolicy
from orca_math.engine.executors import LocalExecutor, StepTask
from orca_math.engine.items import ItemResult
from orca_math.models.errors import ServerError
from orca_math.testing import ScriptedChatClient
from tests._virtual_time import run_virtual


class _Counting:
    """Items in `process` at once, and the time each item was recorded."""

    def __init__(self) -> None:
        self.now = self.peak = 0
        self.recorded: dict[str, float] = {}


async def _run(client: ManagedClient, items: int, concurrency: int) -> _Counting:
    loop = asyncio.get_running_loop()
    seen = _Counting()

    async def process(item: dict[str, Any]) -> ItemResult:
        seen.now += 1
        seen.peak = max(seen.peak, seen.now)
        try:
            await client.create([UserMessage(content=f"problem {item['id']}", source="user")])
            return ItemResult(outputs=[item])
        finally:
            seen.now -= 1

    def record(item: dict[str, Any], outcome: Any) -> bool:
        assert not isinstance(outcome, BaseException), outcome
        assert item["id"] not in seen.recorded  # every item exactly once
        seen.recorded[item["id"]] = loop.time()
        return True

    task = StepTask(name="solve", items=iter([{"id": f"p{i}"} for i in range(items)]), key=lambda item: item["id"],
                    process=process, record=record, stopped=lambda: False, concurrency=concurrency)
    await LocalExecutor().run(task)
    return seen


def _fails_once_per_item():
    failed: set[str] = set()

    def reply(messages) -> str | BaseException:
        text = str(messages[-1].content)
        if text not in failed:
            failed.add(text)
            return ServerError("http://server/v1 answered 500; it is a server-side error and may pass.")
        return "Final answer: 42"

    return reply


def test_items_waiting_out_a_retry_backoff_let_other_items_use_the_free_slots():
    retry = RetryPolicy(initial_wait=1.0, max_wait=1.0, jitter=0.0)  # a 1 s back-off after every first attempt
    client = ManagedClient(ScriptedChatClient(responder=_fails_once_per_item(), latency=0.05), concurrency=4, retry=retry)
    seen = run_virtual(_run(client, 40, 4))
    assert len(seen.recorded) == 40
    # One item per worker would take 40 / 4 x 1.1 s = 11 s; parked items free their worker, so the
    # 40 back-offs overlap. Calls in flight stay at 4 (the client's limit); items in flight grow.
    assert max(seen.recorded.values()) < 3.0, max(seen.recorded.values())
    assert seen.peak > 4
    assert client.concurrency.stats()["in_flight"] == 0


def test_a_hung_request_parks_its_item_and_the_others_go_on():
    hung = {"done": False}

    def reply(messages) -> str:
        return "Final answer: 42"

    inner = ScriptedChatClient(responder=reply, latency=0.05)
    original = inner.create

    async def create(messages, **kwargs):
        if "p0" in str(messages[-1].content) and not hung["done"]:
            hung["done"] = True
            await asyncio.sleep(60.0)  # accepted, answered a minute later
        return await original(messages, **kwargs)

    inner.create = create  # type: ignore[method-assign]
    client = ManagedClient(inner, concurrency=2, retry=RetryPolicy(timeout=None))
    seen = run_virtual(_run(client, 200, 2))
    assert len(seen.recorded) == 200
    others = [t for key, t in seen.recorded.items() if key != "p0"]
    # 199 items take 5 s at 2 at a time, 10 s on the one worker the hung item leaves; it parks
    # after the hang threshold (1 s), so its worker is not lost for the minute.
    assert max(others) < 7.0, max(others)
    assert seen.recorded["p0"] >= 60.0


def test_without_waits_no_more_items_than_the_concurrency_are_in_flight():
    client = ManagedClient(ScriptedChatClient(responder=lambda m: "Final answer: 42", latency=0.05), concurrency=8)
    seen = run_virtual(_run(client, 200, 8))
    assert len(seen.recorded) == 200 and seen.peak == 8
