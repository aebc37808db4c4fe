"""Batch mode end to end against the fake batch server: same rows as online, faults handled, nothing lost.

Each test runs a real pipeline (autogen's OpenAI client building the bodies, the openai SDK's
Files and Batches calls, loopback HTTP) on the scripted pipeline responder, and checks what a user
relies on: the rows are those of an online run, each request is billed once (counted at the
server), expired, lost and failed batches are resubmitted or end as failure rows with reasons.
"""

from __future__ import annotations

import json

import pytest

from orca_math.engine.batch import BatchState, state_path
from orca_math.engine.items import RunStopped
from orca_math.pipeline import Pipeline, Solve
from orca_math.testing.batch_server import BatchServer, BatchServerConfig, responder_reply
from orca_math.testing.fault_server import FaultConfig, FaultServer
from tests._batch_helpers import (
    MODEL,
    client_for,
    close_clients,
    failures,
    options,
    rows,
    solve_pipeline,
    write_seeds,
)


@pytest.fixture(autouse=True)
def _closed_clients():
    yield
    close_clients()


def test_the_whole_pipeline_in_batch_mode_gives_the_rows_of_online_mode(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 5)
    with FaultServer(FaultConfig(reply=responder_reply, model=MODEL)) as online_server:
        online = Pipeline(model=client_for(online_server), progress=False).run_sync(seeds, out=tmp_path / "online")
        online_calls = len(online_server.chat_requests())
    with BatchServer() as server:
        batch = Pipeline(model=client_for(server), mode="batch", batch=options(), progress=False).run_sync(seeds, out=tmp_path / "batch")
        billed = server.billed
        created = server.created_batches()
    assert rows(batch) == rows(online) and len(rows(batch)) > 5
    assert sum(billed.values()) == online_calls  # the same requests, each paid once
    assert max(billed.values()) == 1
    # Stages stay stages: expand, both hardening rounds and solve each went as batches of their own.
    assert len(created) >= 4
    assert batch.funnel.to_dict()["stages"][0]["calls"] == online.funnel.to_dict()["stages"][0]["calls"]


def test_out_of_order_results_give_the_same_rows(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 12)
    with BatchServer() as server:
        in_order = solve_pipeline(server).run_sync(seeds, out=tmp_path / "a")
    with BatchServer(BatchServerConfig(shuffle=True, seed=3)) as server:
        shuffled = solve_pipeline(server).run_sync(seeds, out=tmp_path / "b")
        lines = server.created_batches()[0].results
    assert [r["custom_id"] for r in lines] != sorted(r["custom_id"] for r in lines) or len(lines) < 2
    assert rows(shuffled) == rows(in_order)


def test_a_batch_that_expires_half_done_resubmits_only_the_other_half(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 10)
    with BatchServer(BatchServerConfig(partial_fraction=0.5, rest_as="expired", faulty_batches=1)) as server:
        result = solve_pipeline(server).run_sync(seeds, out=tmp_path / "out")
        first, second = server.created_batches()
        billed = server.billed
    expired = {r["custom_id"] for r in first.results if not r["ok"]}
    assert len(expired) == 5
    assert {line["custom_id"] for line in second.lines} == expired  # only the expired half went again
    assert sum(billed.values()) == 10 and max(billed.values()) == 1
    assert len(rows(result)) == 10 and failures(tmp_path / "out") == []
    state = BatchState(state_path(tmp_path / "out"))
    ended = state.batches()
    assert [b.state for b in ended] == ["stored", "stored"]
    assert ended[0].counts["stored"]["retry"] == 5 and ended[1].counts["stored"]["succeeded"] == 5
    retried = [state.request(k) for k in _keys(state, ended[0].id)]
    assert all(r.attempts == 2 and r.history and r.history[0].startswith("expired") for r in retried)


def _keys(state: BatchState, batch_id: str) -> list[str]:
    with state._lock:
        return [k for (k,) in state._db.execute("SELECT key FROM requests WHERE history LIKE '%expired%'")]


def test_a_lost_output_file_is_resubmitted_then_fails_with_its_reason(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 4)
    with BatchServer(BatchServerConfig(lose_output=True, faulty_batches=1)) as server:
        result = solve_pipeline(server).run_sync(seeds, out=tmp_path / "a")
        assert len(server.created_batches()) == 2
    assert len(rows(result)) == 4
    with BatchServer(BatchServerConfig(lose_output=True)) as server:
        result = solve_pipeline(server, batch=options(max_attempts=2)).run_sync(seeds, out=tmp_path / "b")
        assert len(server.created_batches()) == 2
    failed = failures(tmp_path / "b")
    assert len(failed) == 4 and len(rows(result)) == 0
    assert all("could not be downloaded" in f["reason"] and "after 2 batch attempt(s)" in f["reason"] for f in failed)


def test_a_failed_batch_shows_the_providers_reason_and_loses_nothing(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 3)
    with BatchServer(BatchServerConfig(fail_batch="Line 2 is not valid JSON.")) as server:
        solve_pipeline(server, batch=options(max_attempts=1)).run_sync(seeds, out=tmp_path / "out")
    failed = failures(tmp_path / "out")
    assert sorted(f["id"] for f in failed) == ["s0000", "s0001", "s0002"]
    assert all("the batch failed: Line 2 is not valid JSON." in f["reason"] for f in failed)


def test_a_file_over_the_providers_limit_is_split_before_upload(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 9)
    with BatchServer(BatchServerConfig(max_file_bytes=4096)) as server:
        result = solve_pipeline(server, batch=options(max_bytes=4096)).run_sync(seeds, out=tmp_path / "out")
        created = server.created_batches()
        uploads = [r for r in server.state.requests if r == ("POST", "/v1/files")]
    assert len(created) >= 2 and len(uploads) == len(created)  # none was refused
    assert len(rows(result)) == 9


def test_batches_are_split_by_request_count_and_tokens_and_kept_to_max_open(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 7)
    with BatchServer(BatchServerConfig(polls_before_done=1)) as server:
        result = solve_pipeline(server, batch=options(max_requests=3, max_open=1)).run_sync(seeds, out=tmp_path / "a")
        assert [len(b.lines) for b in server.created_batches()] == [3, 3, 1]
    assert len(rows(result)) == 7
    with BatchServer() as server:
        solve_pipeline(server, batch=options(max_tokens=60)).run_sync(seeds, out=tmp_path / "b")
        sizes = [len(b.lines) for b in server.created_batches()]
    assert sum(sizes) == 7 and len(sizes) > 1


def test_a_rejected_key_stops_the_run_at_the_first_call_in_one_sentence(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 3)
    with BatchServer(BatchServerConfig(api_key="sk-right")) as server:
        pipeline = Pipeline([Solve()],
                            model=client_for(server, api_key="sk-wrong"), mode="batch", batch=options(), progress=False)
        with pytest.raises(RunStopped) as caught:
            pipeline.run_sync(seeds, out=tmp_path / "out")
        sent = list(server.state.requests)
    message = str(caught.value)
    assert "401" in message and "sk-wrong" not in message and message.count(". ") <= 1
    assert ("POST", "/v1/files") not in sent and ("POST", "/v1/batches") not in sent


def test_a_batch_id_the_provider_no_longer_knows_is_said_and_resubmitted(tmp_path, caplog):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 3)
    with BatchServer(BatchServerConfig(polls_before_done=100)) as server:
        with pytest.raises(RunStopped):
            solve_pipeline(server).run_sync(seeds, out=tmp_path / "out", wait=False)
        lost = server.created_batches()[0].id
        server.state.batches.clear()  # purged at the provider (or another account's key)
        with caplog.at_level("WARNING"):
            result = solve_pipeline(server).run_sync(seeds, out=tmp_path / "out")
        resent = server.created_batches()
    assert len(rows(result)) == 3 and len(resent) == 1 and len(resent[0].lines) == 3
    said = [r.getMessage() for r in caplog.records if f"has no batch {lost} any more" in r.getMessage()]
    assert len(said) == 1 and "submitted again" in said[0]


def test_batch_input_files_hold_no_api_key(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 2)
    with BatchServer() as server:
        pipeline = Pipeline([Solve()],
                            model=client_for(server, api_key="sk-secret-0123456789"), mode="batch", batch=options(), progress=False)
        pipeline.run_sync(seeds, out=tmp_path / "out")
    for path in (tmp_path / "out" / "batches").iterdir():
        assert b"sk-secret-0123456789" not in path.read_bytes(), path
    lines = [json.loads(raw) for raw in (tmp_path / "out" / "batches" / "b00001.input.jsonl").read_text().splitlines()]
    assert lines[0]["method"] == "POST" and lines[0]["url"] == "/v1/chat/completions" and lines[0]["body"]["model"] == MODEL


def _bad_first(messages):
    """The teacher's first reply has no final answer; asked again (with the reason), it has one."""
    if "could not be used" in str(messages[-1].get("content")):
        return responder_reply(messages)
    return "I would rather not say."


def test_a_reply_that_does_not_parse_is_asked_again_in_the_next_batch(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 4)
    with BatchServer(BatchServerConfig(reply=_bad_first)) as server:
        result = solve_pipeline(server).run_sync(seeds, out=tmp_path / "out")
        first, second = server.created_batches()
    assert len(first.lines) == len(second.lines) == 4
    retry = second.lines[0]["body"]["messages"]
    assert retry[-2]["role"] == "assistant" and retry[-2]["content"] == "I would rather not say."
    assert "could not be used" in retry[-1]["content"]  # the reason appended, as online
    assert len(rows(result)) == 4


def test_a_reply_that_never_parses_ends_as_a_failure_row_after_the_agents_retries(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 2)
    with BatchServer(BatchServerConfig(reply=lambda messages: "I would rather not say.")) as server:
        solve_pipeline(server).run_sync(seeds, out=tmp_path / "out")
        batches = len(server.created_batches())
    failed = failures(tmp_path / "out")
    assert len(failed) == 2 and all(f["attempts"] == batches for f in failed) and batches >= 2
    assert all("final answer" in f["reason"].lower() for f in failed)


def test_a_prompt_answered_online_is_not_submitted_in_batch_mode(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 3)
    with BatchServer() as server:  # a provider serves both: /v1/chat/completions and /v1/batches
        cache = tmp_path / "shared-cache.sqlite"
        solve_pipeline(server, mode="online", cache=cache).run_sync(seeds, out=tmp_path / "online")
        online_calls = sum(1 for r in server.state.requests if r == ("POST", "/v1/chat/completions"))
        result = solve_pipeline(server, cache=cache).run_sync(seeds, out=tmp_path / "batch")
        assert online_calls == 3 and server.created_batches() == []  # every reply came from the response cache
    assert len(rows(result)) == 3


def test_a_rerun_asks_again_for_replies_that_could_not_be_used(tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 2)
    with BatchServer(BatchServerConfig(reply=lambda messages: "I would rather not say.")) as server:
        solve_pipeline(server).run_sync(seeds, out=tmp_path / "out")
        first_run = len(server.created_batches())
        server.config.reply = responder_reply  # the model answers properly now
        result = solve_pipeline(server).run_sync(seeds, out=tmp_path / "out")  # failed items are retried, as online
        assert len(server.created_batches()) == first_run + 1 and len(server.created_batches()[-1].lines) == 2
    assert len(rows(result)) == 2
