"""A reply an agent rejects is not served again from the response cache, so a rerun really retries.

Before, every reply was cached, parseable or not: a server that gave unusable replies for a while
left its failed items failing forever on resume, with zero requests made.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from autogen_core.models import UserMessage

from orca_math._sync import run_sync
from orca_math.agents import AgentFailedError, Teacher
from orca_math.engine.cache import ResponseCache
from orca_math.engine.client import ManagedClient, RetryPolicy
from orca_math.models import load_model
from orca_math.pipeline import Pipeline, Solve
from orca_math.testing import ScriptedChatClient
from orca_math.testing.fault_server import FaultConfig, FaultServer

ITEMS = 5


def _seeds(path):
    path.write_text("".join(json.dumps({"id": f"p{i}", "question": f"Ann has {i} pens and buys 3 more. How many?"}) + "\n"
                            for i in range(ITEMS)))
    return path


def test_a_rerun_retries_items_whose_replies_did_not_parse(tmp_path):
    # Unusable replies for every attempt of run 1 (3 per item), good ones after.
    config = FaultConfig(outcomes=["bad_format"] * (3 * ITEMS))
    seeds = _seeds(tmp_path / "seeds.jsonl")
    with FaultServer(config) as server:
        client = load_model(server.base_url, model="fault-model", api_key="sk-test")
        try:
            pipeline = Pipeline([Solve()], model=client, concurrency=2, progress=False)
            first = pipeline.run_sync(seeds, out=tmp_path / "out")
            first_requests = len(server.chat_requests())
            second = pipeline.run_sync(seeds, out=tmp_path / "out")
            second_requests = len(server.chat_requests()) - first_requests
            third = pipeline.run_sync(seeds, out=tmp_path / "out")
            third_requests = len(server.chat_requests()) - first_requests - second_requests
        finally:
            run_sync(client.close())
    assert first.funnel.final_rows == 0 and first_requests == 3 * ITEMS
    assert second.funnel.final_rows == ITEMS and second_requests == ITEMS  # asked again, once each
    assert third.funnel.final_rows == ITEMS and third_requests == 0  # good replies are still cached


def test_a_rejected_reply_leaves_the_cache_and_a_good_one_stays(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    inner = ScriptedChatClient(["I am not sure.", "3 + 4 = 7\nFinal answer: 7", "unused"])
    client = ManagedClient(inner, cache=cache, retry=RetryPolicy(max_attempts=1))
    teacher = Teacher(client, parse_retries=0)
    with pytest.raises(AgentFailedError, match="no 'Final answer: <value>' line"):  # the unusable reply fails the call ...
        run_sync(teacher.call(question="What is 3 + 4?"))
    assert len(cache) == 0  # ... and is not kept
    assert run_sync(teacher.call(question="What is 3 + 4?")).output.final_answer == "7"
    assert run_sync(teacher.call(question="What is 3 + 4?")).usage.cached_calls == 1
    assert len(inner.calls) == 2 and len(cache) == 1
    cache.close()


def test_reject_reply_is_keyed_like_create(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    client = ManagedClient(ScriptedChatClient(responder=lambda messages: "a reply"), cache=cache)
    messages = [UserMessage(content="hello", source="user")]
    args = {"temperature": 0.0, "orca_math_sample": 1}
    run_sync(client.create(messages, extra_create_args=args))
    run_sync(client.create(messages, extra_create_args={**args, "orca_math_sample": 2}))
    assert len(cache) == 2
    assert run_sync(client.reject_reply(messages, extra_create_args=args)) is True
    assert len(cache) == 1
    assert run_sync(client.reject_reply(messages, extra_create_args=args)) is False  # already gone
    assert run_sync(client.create(messages, extra_create_args={**args, "orca_math_sample": 2})).cached
    cache.close()


# --- a damaged cache file is set aside, not a traceback (#21 item 8) ---


def _result(text: str):
    from autogen_core.models import CreateResult, RequestUsage

    return CreateResult(finish_reason="stop", content=text, usage=RequestUsage(prompt_tokens=3, completion_tokens=4),
                        cached=False)


def _filled_cache(path, n: int = 400) -> bytes:
    cache = ResponseCache(path)
    for i in range(n):
        cache.add(f"key-{i}", _result(f"reply {i} " + "x" * 500))
    cache.close()
    import sqlite3

    with sqlite3.connect(path) as db:  # fold the WAL into the file, as a finished run leaves it
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.read_bytes()


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_cache_file_is_set_aside_with_one_warning_and_rebuilt(tmp_path, caplog, damage):
    path = tmp_path / "cache.sqlite"
    whole = _filled_cache(path)
    damaged = whole[: len(whole) // 2] if damage == "truncated" else b"this is not a database\n" * 200
    path.write_bytes(damaged)
    with caplog.at_level("WARNING", logger="orca_math.engine.cache"):
        cache = ResponseCache(path)
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "could not be read" in warnings[0].getMessage() and str(path) in warnings[0].getMessage()
    aside = [p for p in tmp_path.iterdir() if re.fullmatch(r"cache\.sqlite\.corrupt-[0-9-]+", p.name)]
    assert len(aside) == 1 and aside[0].read_bytes() == damaged  # kept for a post-mortem, untouched
    assert len(cache) == 0 and run_sync(cache.get("key-1")) is None
    cache.put_now("fresh", _result("a new reply"))
    cache.close()
    reopened = ResponseCache(path)
    assert reopened.get_now("fresh").content == "a new reply" and len(reopened) == 1
    reopened.close()


def test_a_cli_run_over_a_garbage_cache_warns_once_and_finishes(tmp_path):
    out = tmp_path / "solved.jsonl"
    cache = tmp_path / "solved.jsonl.run" / "cache.sqlite"  # solve's run folder sits next to its output file
    seeds = _seeds(tmp_path / "seeds.jsonl")
    with FaultServer(FaultConfig()) as server:
        argv = [sys.executable, "-m", "orca_math", "solve", "--seeds", str(seeds), "--out", str(out), "--model",
                server.base_url, "--model-name", "fault-model", "--no-progress"]
        env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
        assert subprocess.run(argv, capture_output=True, timeout=120, env=env).returncode == 0
        for leftover in cache.parent.glob("cache.sqlite-*"):
            leftover.unlink()
        cache.write_bytes(b"\x00garbage\xff" * 1000)  # overwritten by something else
        done = subprocess.run([*argv, "--fresh"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("could not be read") == 1 and "Traceback" not in done.stderr
    assert len(server.chat_requests()) == 2 * ITEMS and len(out.read_text().splitlines()) == ITEMS  # asked anew


# --- written behind in batches: what is buffered, what survives, what a kill costs ---


def test_buffered_replies_are_served_at_once_and_reach_disk_at_close(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = ResponseCache(path, flush_seconds=3600)  # only a full batch or close writes
    other = ResponseCache(path)

    async def go():
        await cache.put("a", _result("first"))
        return await cache.get("a"), await other.get("a")

    mine, theirs = run_sync(go())
    assert mine.content == "first" and mine.cached and theirs is None  # not committed yet
    assert cache.remove("a") is True and cache.get_now("a") is None and cache.remove("a") is False
    cache.add("b", _result("second"))
    cache.close()
    assert other.get_now("b").content == "second" and other.get_now("a") is None  # a commit wakes the other's filter
    other.close()


def test_a_full_batch_is_committed_without_waiting_for_the_timer(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = ResponseCache(path, flush_rows=10, flush_seconds=3600)
    for i in range(25):
        cache.add(f"k{i}", _result(f"r{i}"))
    deadline = time.monotonic() + 60
    while _cached_rows(path) < 20 and time.monotonic() < deadline:  # two full batches, committed by the worker
        time.sleep(0.01)
    assert _cached_rows(path) == 20  # the last 5 wait for their batch to fill, or for the timer
    cache.close()
    assert _cached_rows(path) == 25


def test_replies_buffered_when_the_interpreter_exits_are_written(tmp_path):
    path = tmp_path / "cache.sqlite"
    script = ("import sys\nfrom autogen_core.models import CreateResult, RequestUsage\nfrom orca_math.engine.cache import ResponseCache\n"
              "cache = ResponseCache(sys.argv[1], flush_seconds=3600)\n"
              "for i in range(7):\n"
              "    cache.add(f'k{i}', CreateResult(finish_reason='stop', content=f'r{i}', usage=RequestUsage(prompt_tokens=1, "
              "completion_tokens=1), cached=False))\n"
              "raise KeyboardInterrupt  # Ctrl-C, with nothing closed\n")
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60)
    assert "KeyboardInterrupt" in done.stderr
    cache = ResponseCache(path)
    assert len(cache) == 7 and cache.get_now("k6").content == "r6"
    cache.close()


MODEL = "fault-model"


def _generate_argv(seeds, out, server) -> list[str]:
    return [sys.executable, "-m", "orca_math", "generate", "--seeds", str(seeds), "--out", str(out), "--model",
            server.base_url, "--model-name", MODEL, "--no-progress", "--no-decontaminate", "--concurrency", "8"]


def _answered(server) -> int:
    return sum(1 for r in server.chat_requests() if r.outcome == "ok")


def _cached_rows(path) -> int:
    import sqlite3

    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]
    except sqlite3.OperationalError:  # created but no table yet
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("when", ["after_its_batch_is_written", "right_after_the_replies"])
def test_sigkill_loses_only_unwritten_replies_and_a_rerun_pays_for_nothing_twice(tmp_path, when):
    """`generate` (several calls per item) is killed with SIGKILL while R replies are answered and the
    rest hang; the rerun against the same, now healthy, server must cost exactly what an
    uninterrupted run costs, plus at most the replies that were not yet committed to the cache."""
    from orca_math.testing.batch_server import responder_reply

    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"s{i}", "question": f"Ann has {i + 3} pens and buys {i + 2} more. "
                                         "How many pens does she have?", "answer": str(2 * i + 5)}) + "\n"
                             for i in range(6)))
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "TIKTOKEN_CACHE_DIR": os.environ.get("TIKTOKEN_CACHE_DIR", "")}
    with FaultServer(FaultConfig(reply=responder_reply, model=MODEL)) as clean_server:
        clean = subprocess.run(_generate_argv(seeds, tmp_path / "clean", clean_server), capture_output=True, text=True,
                               timeout=300, env=env)
        uninterrupted = _answered(clean_server)
    assert clean.returncode == 0, clean.stderr
    answered_first = uninterrupted // 2
    gate = FaultConfig(reply=responder_reply, model=MODEL, outcomes=["ok"] * answered_first, rate_timeout=1.0, timeout_hang=600)
    out = tmp_path / "killed"
    with FaultServer(gate) as server:
        process = subprocess.Popen(_generate_argv(seeds, out, server), env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while _answered(server) < answered_first and time.monotonic() < deadline:
            time.sleep(0.005)
        if when == "after_its_batch_is_written":  # the process still runs: its timer alone must commit the batch
            while _cached_rows(out / "cache.sqlite") < answered_first and time.monotonic() < deadline:
                time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
        assert _answered(server) == answered_first
        committed = _cached_rows(out / "cache.sqlite")
        server.config.rate_timeout = 0.0  # healthy from now on
        rerun = subprocess.run(_generate_argv(seeds, out, server), capture_output=True, text=True, timeout=300, env=env)
        total = _answered(server)
    assert rerun.returncode == 0, rerun.stderr
    if when == "after_its_batch_is_written":
        assert committed == answered_first and total == uninterrupted  # nothing was asked twice
    lost = answered_first - committed
    assert lost <= 256  # at most one batch (FLUSH_ROWS) was still in memory
    assert uninterrupted <= total <= uninterrupted + lost
    assert _rows(out) == _rows(tmp_path / "clean")


def _rows(out) -> list[tuple[str, str, str]]:
    import datasets

    data = datasets.load_from_disk(str(out / "dataset"))
    return sorted(zip(data["id"], data["question"], data["answer"], strict=True))


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a child of a non-interactive shell starts with SIGINT ignored


@pytest.mark.slow
def test_ctrl_c_writes_every_reply_the_run_was_given(tmp_path):
    """SIGINT to `generate` while R replies are answered and the rest hang: exit 130, and the cache
    file holds all R replies, so a rerun asks for none of them again. (Whether the batch timer or
    the way out wrote the last ones depends on timing here; the exit path alone is checked by
    `test_replies_buffered_when_the_interpreter_exits_are_written`.)"""
    from orca_math.testing.batch_server import responder_reply

    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"s{i}", "question": f"Bo has {i + 4} cups and buys {i + 1} more. "
                                         "How many cups does he have?", "answer": str(2 * i + 5)}) + "\n" for i in range(6)))
    answered_first, slots = 7, 2
    gate = FaultConfig(reply=responder_reply, model=MODEL, outcomes=["ok"] * answered_first, rate_timeout=1.0, timeout_hang=600)
    out = tmp_path / "out"
    env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
    with FaultServer(gate) as server:
        process = subprocess.Popen([*_generate_argv(seeds, out, server), "--concurrency", str(slots)], env=env,
                                   preexec_fn=_default_sigint, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        # Every slot holds a hanging request: each answered reply has left its slot, and a reply is
        # buffered for the cache in the same step of the event loop that frees its slot.
        while sum(r.outcome == "timeout" for r in server.chat_requests()) < slots and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _answered(server) == answered_first
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 130, stderr
        assert _cached_rows(out / "cache.sqlite") == answered_first
        server.config.rate_timeout = 0.0
        rerun = subprocess.run(_generate_argv(seeds, out, server), capture_output=True, text=True, timeout=300, env=env)
        assert rerun.returncode == 0, rerun.stderr
        bodies = [json.dumps(r.body, sort_keys=True) for r in server.chat_requests() if r.outcome == "ok"]
    assert len(bodies) == len(set(bodies))  # no request answered twice


def test_a_batch_larger_than_one_statement_is_written_whole_and_removals_too(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = ResponseCache(path, flush_rows=1000, flush_seconds=3600)
    for i in range(450):  # more rows than one INSERT holds
        cache.add(f"k{i}", _result(f"r{i}"))
    cache.flush_now()
    assert _cached_rows(path) == 450
    for i in range(0, 450, 2):
        cache.remove(f"k{i}")
    cache.add("k0", _result("back"))  # removed, then written again in the same batch: the last write wins
    cache.close()
    reopened = ResponseCache(path)
    assert len(reopened) == 226 and reopened.get_now("k0").content == "back" and reopened.get_now("k2") is None
    assert reopened.get_now("k449").content == "r449"
    reopened.close()


def test_a_writer_learns_the_keys_another_process_committed_between_its_own_batches(tmp_path):
    path = tmp_path / "cache.sqlite"
    mine, theirs = ResponseCache(path, flush_seconds=3600), ResponseCache(path, flush_seconds=3600)
    mine.add("a", _result("1"))
    mine.flush_now()
    theirs.add("b", _result("2"))
    theirs.flush_now()
    mine.add("c", _result("3"))
    mine.flush_now()  # its transaction sees the file changed by another writer, and loads that writer's keys
    assert "b" in mine and "a" in theirs and "c" not in theirs
    assert mine.get_now("b").content == "2"
    mine.close()
    theirs.close()


def test_a_cache_file_of_the_earlier_layout_is_copied_over_and_its_replies_are_served(tmp_path):
    # Earlier versions kept replies in `responses`, keyed by a TEXT primary key. Written here with plain
    # sqlite3, as such a file was, with one reply replaced once (INSERT OR REPLACE moved it to the end).
    import sqlite3

    path = tmp_path / "cache.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, model TEXT, value TEXT NOT NULL, created REAL)")
        for key, text in (("a", "old a"), ("b", "b"), ("a", "new a")):
            db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, 0)", (key, "m", _result(text).model_dump_json()))
    db.close()
    cache = ResponseCache(path)
    assert cache.get_now("a").content == "new a" and cache.get_now("b").content == "b" and len(cache) == 2
    cache.close()
    with sqlite3.connect(path) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert "responses" not in tables and "replies" in tables
    again = ResponseCache(path)  # a second opening finds nothing to copy
    assert again.get_now("a").content == "new a" and len(again) == 2
    again.close()


def test_a_key_two_writers_stored_at_once_reads_the_newest_and_a_removal_takes_both(tmp_path):
    path = tmp_path / "cache.sqlite"
    first, second = ResponseCache(path, flush_seconds=3600), ResponseCache(path, flush_seconds=3600)
    first.add("k", _result("first's"))  # both missed the same request and both stored the reply
    second.add("k", _result("second's"))
    first.flush_now()
    second.flush_now()
    third = ResponseCache(path)
    assert third.get_now("k").content == "second's"
    assert third.discard_now("k") is True
    assert third.get_now("k") is None and len(third) == 0  # the older row went too: it cannot come back
    fourth = ResponseCache(path)
    assert fourth.get_now("k") is None
    for cache in (first, second, third, fourth):
        cache.close()


def test_a_key_written_again_keeps_one_row(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = ResponseCache(path, flush_seconds=3600)
    for text in ("one", "two", "three"):
        cache.add("k", _result(text))
        cache.flush_now()
    assert len(cache) == 1 and _cached_rows(path) == 1 and cache.get_now("k").content == "three"
    cache.close()
    assert ResponseCache(path).get_now("k").content == "three"


def test_after_a_commit_that_failed_later_replies_are_still_found(tmp_path, monkeypatch, caplog):
    # A failed transaction gives its row ids back to sqlite, which hands them to the next batch: the
    # in-memory index must not believe it already knows those rows.
    import sqlite3

    import orca_math.engine.cache as cache_module

    path = tmp_path / "cache.sqlite"
    cache = ResponseCache(path, flush_seconds=3600)
    cache.add("a", _result("a"))
    cache.flush_now()
    real_load = cache._load_new_keys

    def load_then_fail(connection):
        real_load(connection)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(cache, "_load_new_keys", load_then_fail)
    cache.add("b", _result("b"))
    cache.flush_now()  # rolled back, with one warning
    monkeypatch.setattr(cache, "_load_new_keys", real_load)
    assert "Could not write 1 replies" in caplog.text
    cache.add("c", _result("c"))
    cache.flush_now()
    assert cache.get_now("a").content == "a" and cache.get_now("c").content == "c" and cache.get_now("b") is None
    cache.close()
    assert cache_module.ResponseCache(path).get_now("c").content == "c"


def test_a_file_another_process_holds_while_it_is_copied_over_is_waited_for_not_set_aside(tmp_path):
    import sqlite3
    import threading

    path = tmp_path / "cache.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, model TEXT, value TEXT NOT NULL, created REAL)")
        db.execute("INSERT INTO responses VALUES ('a', 'm', ?, 0)", (_result("a").model_dump_json(),))
    db.close()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # as another process copying the table would
    threading.Timer(1.0, lambda: holder.execute("COMMIT")).start()
    cache = ResponseCache(path)  # needs the write lock to copy the table: it waits for it
    assert cache.get_now("a").content == "a"
    cache.close()
    holder.close()
    assert not list(tmp_path.glob("*.corrupt-*"))
