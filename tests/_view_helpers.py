"""Folders for the viewer tests: a scripted generation run with a hostile problem, and checkpoint readers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orca_math.pipeline import Expand, Filter, Harden, Pipeline, Solve, Verify
from orca_math.testing import ScriptedChatClient
from tests import _report_helpers as report

#: A seed whose Ask-Me-Anything problems include one holding a script tag: it must show as text.
HOSTILE = "<script>alert(1)</script> A farmer has 9 goats and buys 4 more. How many goats now?"
SEEDS = [*report.SEEDS, {"question": "A shelf holds 8 mugs and 5 more are added. How many mugs are on the shelf?", "answer": "13"}]


def responder(messages) -> str:
    """The report helpers' scripted teacher, a program writer that agrees with it, and a seed about mugs
    whose new problem holds markup."""
    system, user = messages[0].content, messages[-1].content
    if "Python programs" in system:  # ProgramWriter: the program computes what the teacher answers
        question = user.split("Problem:")[1].strip().split("\n\n")[0]
        if "goats" in question or "mugs" in question:
            return "```python\nanswer = 8 + 5\n```"
        final = report._teacher_reply(question).splitlines()[-1].split(":", 1)[1].strip()
        value = final if final.replace(".", "", 1).isdigit() else "None"
        return f"```python\ntotal = {value}\nanswer = total\n```"
    if "grade-school" in system and "mugs" in user:
        return json.dumps({"statement": "A shelf holds 13 mugs.", "problems": [{"question": HOSTILE, "target": "13"}]})
    if "patient math teacher" in system and ("goats" in user or "mugs" in user):
        return "Step 1: add the numbers.\nFinal answer: 13"
    return report.responder(messages)


def make_run(out: Path, *, latency: float = 0.0, seeds: list[dict[str, Any]] | None = None) -> Path:
    """The Orca-Math stages on the scripted client into `out` (slow replies with `latency`)."""
    client = ScriptedChatClient(responder=responder, latency=latency)
    stages = [Expand(), Harden(rounds=2), Solve(), Verify(verifier="program"), Filter()]
    Pipeline(stages, model=client, managed=False, progress=False, concurrency=2).run_sync(seeds or SEEDS, out=out)
    return out


def checkpoint_rows(out: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """stage -> problem id -> what the stage's checkpoint holds for it (outputs, drops, failures), last record wins."""
    summary = json.loads((out / "summary.json").read_text())
    stages_dir = Path(summary["run_dir"]) / "stages"
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for path in sorted(stages_dir.glob("*.jsonl")):
        latest: dict[str, dict[str, Any]] = {}
        for line in path.read_text().splitlines():
            record = json.loads(line)
            latest[record["key"]] = record
        mine: dict[str, list[dict[str, Any]]] = {}
        for record in latest.values():
            for row in record.get("outputs") or []:
                mine.setdefault(row["id"], []).append(row)
            for drop in record.get("drops") or []:
                mine.setdefault(drop["id"], []).append(drop)
            if record["status"] == "failed":
                mine.setdefault(record["failure"]["id"], []).append(record["failure"])
        found[path.stem] = mine
    return found


def write_big_run(out: Path, n: int) -> None:
    """A finished-looking run of `n` kept problems in one filter checkpoint (100 rows a line)."""
    run_dir = out / "runs" / "big0000000000000"
    (run_dir / "stages").mkdir(parents=True)
    config = {"job": "generate", "stages": [{"stage": "filter", "class": "Filter", "params": {}}]}
    (run_dir / "manifest.json").write_text(json.dumps({"run_key": "big0000000000000", "layout": 2, "config": config}))
    with open(run_dir / "stages" / "filter.jsonl", "w") as handle:
        for start in range(0, n, 100):
            rows = [{"id": f"p{i}", "question": f"Problem {i}: Ann has {i} apples and gets 3 more. How many now?", "origin": "seed",
                     "answer": "Step 1: add.\n" * 5 + f"Final answer: {i + 3}", "final_answer": str(i + 3),
                     "verification": {"method": "program", "votes": 1}} for i in range(start, min(n, start + 100))]
            handle.write(json.dumps({"key": f"k{start}", "status": "ok", "outputs": rows, "drops": []}) + "\n")


def as_running(out: Path, copy: Path) -> Path:
    """A copy of a finished run as it looked while still running: no summary.json, no funnel in its manifest."""
    import shutil

    shutil.copytree(out, copy, ignore=shutil.ignore_patterns(".orca-math.lock"))
    (copy / "summary.json").unlink()
    manifest_path = next((copy / "runs").glob("*/manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    manifest.pop("funnel", None)
    manifest_path.write_text(json.dumps({**manifest, "status": "running"}))
    return copy


def make_running_evaluation(tmp: Path) -> tuple[Path, Path, dict[str, Any], dict[str, Any]]:
    """A real `evaluate()` folder, and a copy as it looked while running (checkpoints only) with one more
    GSM8K item whose student call failed. Returns (finished, running, that item, its failure)."""
    import shutil

    from orca_math.testing import ScriptedChatClient
    from tests.test_evaluate import responder
    from tests.test_evaluate import run as evaluate_run

    finished = evaluate_run(ScriptedChatClient(responder=responder()), tmp / "done").out
    running = tmp / "running"
    shutil.copytree(finished, running, ignore=shutil.ignore_patterns(".orca-math.lock", "summary.json", "items.jsonl"))
    answers = next(running.glob("runs/*/stages/answer.jsonl"))
    item = {"benchmark": "gsm8k", "id": "gsm8k-test-09999", "question": "How many?", "gold": "4"}
    failure = {"id": item["id"], "stage": "answer", "reason": "server_error: 503 after 3 attempts", "error_type": "ServerError",
               "attempts": 3, "raw_reply": None, "input": item}
    with open(answers, "a") as handle:  # as the runner records a failed item
        handle.write(json.dumps({"key": item["id"], "status": "failed", "failure": failure, "usage": {}}) + "\n")
    return finished, running, item, failure
