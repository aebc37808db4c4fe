"""Shared by the batch-mode tests: seeds, pipelines on the fake batch server, and readers of results."""

from __future__ import annotations

import json
from pathlib import Path

from orca_math.engine.batch import BatchOptions
from orca_math.models import load_model
from orca_math.pipeline import Pipeline, Solve

MODEL = "batch-model"
#: fast polls for loopback servers (the default is once a minute)
FAST = {"poll_seconds": 0.01, "max_poll_seconds": 0.05}


def write_seeds(path: Path, n: int, *, answers: bool = True) -> Path:
    with open(path, "w") as handle:
        for i in range(n):
            row = {"id": f"s{i:04d}", "question": f"Tom has {i + 3} apples and buys 2 more. How many apples now?"}
            if answers:
                row["answer"] = str(i + 5)
            handle.write(json.dumps(row) + "\n")
    return path


_CLIENTS: list = []


def client_for(server, *, api_key: str = "sk-test"):
    """A real autogen OpenAI client on `server`; `close_clients` closes it after the test."""
    client = load_model(server.base_url, model=MODEL, api_key=api_key)
    _CLIENTS.append(client)
    return client


def close_clients() -> None:
    """Close every client `client_for` built (pipelines close only the clients they built from specs)."""
    from orca_math._sync import run_sync

    while _CLIENTS:
        run_sync(_CLIENTS.pop().close())


def options(**overrides) -> BatchOptions:
    return BatchOptions(**{**FAST, **overrides})


def solve_pipeline(server, *, batch: BatchOptions | None = None, mode: str = "batch", **kwargs) -> Pipeline:
    return Pipeline([Solve()], model=client_for(server), mode=mode, batch=batch or options(), progress=False, **kwargs)


def rows(result) -> list[dict]:
    """The final dataset's rows without columns that name the run (model endpoint, tokens)."""
    dataset = result.load_dataset()
    kept = [{k: v for k, v in row.items() if k in ("id", "question", "answer", "final_answer", "origin", "parent_id")}
            for row in dataset]
    return sorted(kept, key=lambda row: row["id"])  # rows come in the order items finished, online too


def failures(out: Path) -> list[dict]:
    path = Path(out) / "failures.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
