"""A rerun in batch mode submits again the requests that used up their batch attempts (#21 item 5).

The CLI says "run the same command again to retry them" and docs/batch.md says a rerun resends
what failed; before, a rerun of `solve --batch` served the recorded failures again and sent nothing.
"""

from __future__ import annotations

import json

from orca_math.cli import main
from orca_math.engine.batch.state import BatchState, state_path
from orca_math.testing.batch_server import BatchServer, BatchServerConfig
from tests._batch_helpers import MODEL, write_seeds

FAST = ["--batch-poll-seconds", "0.01"]


def test_a_rerun_of_solve_batch_submits_the_requests_that_used_up_their_attempts(tmp_path, capsys):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 6, answers=False)
    out = tmp_path / "solved.jsonl"
    # The first batch completes half its requests and expires the rest; later batches complete.
    config = BatchServerConfig(partial_fraction=0.5, rest_as="expired", faulty_batches=1)
    with BatchServer(config) as server:
        argv = ["solve", "--seeds", str(seeds), "--out", str(out), "--model", server.base_url, "--model-name", MODEL,
                "--no-progress", "--batch", "--batch-max-attempts", "1", *FAST]
        assert main(argv) == 1  # 3 problems failed: their one batch attempt expired
        err = capsys.readouterr().err
        assert "run the same command again to retry them" in err
        assert len(out.read_text().splitlines()) == 3
        first = server.created_batches()
        assert len(first) == 1 and len(first[0].lines) == 6

        assert main(argv) == 0
        capsys.readouterr()
        created = server.created_batches()
        billed = server.billed
        online = [path for method, path in server.state.requests if path.endswith("/chat/completions")]
    assert online == []  # resent in a batch, at the batch price, not online
    assert len(created) == 2 and len(created[1].lines) == 3  # only the 3 that failed, in a new batch
    assert max(billed.values()) == 1 and sum(billed.values()) == 6  # each request paid for once
    solved = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(row["id"] for row in solved) == [f"s{i:04d}" for i in range(6)]
    state = BatchState(state_path(tmp_path / "solved.jsonl.run"))
    try:
        counts = state.counts()
        resent = [key for key, _, _ in state.requests_of("b00002")]
        history = state.request(resent[0]).history
    finally:
        state.close()
    assert counts["succeeded"] == 6 and counts["failed"] == 0 and len(resent) == 3
    assert history and history[0].startswith("expired")  # the first run's reason is kept in the request's history
