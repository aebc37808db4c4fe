"""The viewer's reader and JSON endpoints on real folders: funnel, rows, lineage, loop, compare, safety."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the view extra is not installed (pip install 'orca-math[view]')")

from starlette.testclient import TestClient  # noqa: E402

from orca_math.readers import EvaluationReader, GenerationReader, RowQuery, open_folder  # noqa: E402
from orca_math.readers.lineage import word_diff  # noqa: E402
from orca_math.view.app import create_app  # noqa: E402
from tests import _report_helpers as report  # noqa: E402
from tests._view_helpers import (  # noqa: E402
    HOSTILE,
    as_running,
    checkpoint_rows,
    make_run,
    make_running_evaluation,
    write_big_run,
)


def _app(folders, **options) -> TestClient:
    """The app as a browser on this machine reaches it (a loopback viewer refuses other host names)."""
    return TestClient(create_app(folders, **options), base_url="http://127.0.0.1:8765")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("view") / "run")


@pytest.fixture(scope="module")
def client(run) -> TestClient:
    return _app([run])


def test_overview_funnel_is_the_summary_and_rows_add_up(client, run):
    summary = json.loads((run / "summary.json").read_text())
    overview = client.get("/api/overview").json()
    assert overview["finished"] and overview["funnel"] == summary["funnel"]
    kept = summary["funnel"]["final_rows"]
    dropped = sum(s["dropped"] for s in summary["funnel"]["stages"])
    assert overview["rows"] == {"kept": kept, "dropped": dropped}
    # The live counts from the checkpoints agree with the summary stage by stage.
    live = {s["name"]: s for s in overview["live"]}
    for stage in summary["funnel"]["stages"]:
        assert live[stage["name"]]["outputs"] == stage["outputs"]
        assert live[stage["name"]]["drops_by_reason"] == stage["drops_by_reason"]


def test_rows_filter_by_status_reason_origin_and_text(client, run):
    drops = [json.loads(line) for line in (run / "drops.jsonl").read_text().splitlines()]
    assert drops, "the scripted run drops problems (a wrong teacher answer, a non-numeric one)"
    dropped = client.get("/api/rows", params={"status": "dropped"}).json()
    assert {r["id"] for r in dropped["rows"]} == {d["id"] for d in drops} and dropped["total"] == len(drops)
    assert {(r["id"], r["stage"], r["reason"]) for r in dropped["rows"]} == {(d["id"], d["stage"], d["reason"]) for d in drops}
    spiders = next(d for d in drops if "spiders" in d["row"]["question"])  # the wrong teacher answer
    one = client.get("/api/rows", params={"reason": spiders["reason"]}).json()
    assert one["total"] == sum(d["reason"] == spiders["reason"] for d in drops) and "spiders" in one["rows"][0]["question"]
    assert client.get("/api/rows", params={"text": "SPIDERS"}).json()["total"] == 1
    assert client.get("/api/rows", params={"text": "no such words anywhere"}).json()["total"] == 0
    hardened = client.get("/api/rows", params={"origin": "suggester_editor", "limit": 3}).json()
    assert hardened["total"] == 8 and len(hardened["rows"]) == 3
    assert all(r["origin"] == "suggester_editor" for r in hardened["rows"])
    assert client.get("/api/rows", params={"origin": "no-such-origin"}).json()["total"] == 0
    facets = client.get("/api/rows").json()["facets"]
    summary = json.loads((run / "summary.json").read_text())["funnel"]
    kept, last = summary["final_rows"], summary["stages"][-1]["name"]
    assert facets["status"] == {"kept": kept, "dropped": len(drops)}
    by_stage = {last: kept}
    for drop in drops:
        by_stage[drop["stage"]] = by_stage.get(drop["stage"], 0) + 1
    assert facets["stage"] == by_stage


def test_pages_cover_every_row_once(client):
    total = client.get("/api/rows").json()["total"]
    seen = []
    for offset in range(0, total, 4):
        seen += [r["id"] for r in client.get("/api/rows", params={"offset": offset, "limit": 4}).json()["rows"]]
    assert len(seen) == total == len(set(seen))


def test_lineage_has_every_stage_node_as_the_checkpoints_hold_it(client, run):
    checkpoints = checkpoint_rows(run)
    problem = next(pid for pid in checkpoints["filter"] if pid.endswith("-h2") and "eggs" not in str(checkpoints["filter"][pid]))
    tree = client.get(f"/api/problem/{problem}").json()
    stages_with_it = [stage for stage, rows in checkpoints.items() if problem in rows]
    assert sorted(s["stage"] for s in tree["stages"]) == sorted(stages_with_it)
    for node in tree["stages"]:
        assert node["row"] == checkpoints[node["stage"]][problem][0]
    # Seed -> round 1 -> this round-2 problem; the diff adds exactly the Editor's new sentence.
    assert [a["origin"] for a in tree["ancestors"]] == ["seed", "suggester_editor"]
    assert tree["node"]["parent_id"] == tree["ancestors"][-1]["id"]
    inserted = "".join(text for op, text in tree["diff"] if op == "insert")
    assert inserted == tree["node"]["question"][len(tree["ancestors"][-1]["question"]):]
    assert tree["suggestions"] == ["add a second step", "add a sharing step"] and tree["solutions"]
    # Its answer was verified by an executed program: the evidence is on the page's data.
    evidence = tree["verification"]
    assert evidence["method"] == "program" and evidence["program"].endswith("answer = total")
    assert evidence["program_answer"] == tree["final_answer"] and tree["verified"] is True
    seed_text, round1 = tree["ancestors"][0]["question"], tree["ancestors"][1]
    assert "".join(text for op, text in round1["diff"] if op == "insert") == round1["question"][len(seed_text):]
    assert round1["suggestions"] == ["add a second step", "add a sharing step"] and "diff" not in tree["ancestors"][0]
    # The seed's children include its Ask-Me-Anything problems and its first hardening round.
    seed = client.get(f"/api/problem/{tree['ancestors'][0]['id']}").json()
    children = {c["id"] for c in seed["children"]["items"]}
    assert tree["ancestors"][1]["id"] in children and any(c.endswith("-ama1") for c in children)


def test_an_ask_me_anything_problem_shows_its_statement_and_siblings(client, run):
    expanded = checkpoint_rows(run)["expand"]
    ama = next(pid for pid in expanded if pid.endswith("-ama1"))
    tree = client.get(f"/api/problem/{ama}").json()
    assert tree["statement"] == expanded[ama][0]["metadata"]["statement"] and tree["statement"]
    assert any(s["id"].endswith("-ama2") for s in tree["siblings"]["items"])
    assert tree["known_answer"] is not None and tree["ancestors"][0]["origin"] == "seed"


def test_a_dropped_problem_carries_its_reason_and_detail(client, run):
    drops = {d["id"]: d for d in map(json.loads, (run / "drops.jsonl").read_text().splitlines())}
    for drop in drops.values():
        tree = client.get(f"/api/problem/{drop['id']}").json()
        assert tree["outcome"]["status"] == "dropped" and tree["outcome"]["reason"] == drop["reason"]
        assert tree["outcome"]["stage"] == drop["stage"] and tree["outcome"]["detail"] == drop["detail"] and drop["detail"]


def test_a_failed_item_shows_its_reason_and_raw_reply(tmp_path):
    replies = ['{"statement": "x"}'] * 3  # Ask-Me-Anything replies that never parse: the seed's expansion fails

    client = report.ScriptedChatClient(replies=replies, responder=report.responder)
    from orca_math.pipeline import Expand, Pipeline

    Pipeline([Expand()], model=client, managed=False, progress=False).run_sync(report.SEEDS[:1], out=tmp_path / "run")
    failures = [json.loads(line) for line in (tmp_path / "run" / "failures.jsonl").read_text().splitlines()]
    assert len(failures) == 1
    app = _app([tmp_path / "run"])
    failed = app.get("/api/rows", params={"status": "failed"}).json()
    assert [(r["id"], r["reason"], r["status"]) for r in failed["rows"]] == [(failures[0]["id"], failures[0]["reason"], "failed")]
    assert app.get("/api/overview").json()["rows"]["failed"] == 1
    tree = app.get(f"/api/problem/{failures[0]['id']}").json()
    assert [(f["stage"], f["reason"], f["raw_reply"]) for f in tree["failures"]] == [("expand", failures[0]["reason"], '{"statement": "x"}')]
    # A seed passed on despite its failed expansion (keep_seeds) is shown as it went on; a lost one as failed.
    assert tree["outcome"]["status"] == ("kept" if any(s["kind"] == "ok" for s in tree["stages"]) else "failed")


def test_a_retried_item_shows_only_its_last_record(tmp_path):
    write_big_run(tmp_path / "run", 2)
    checkpoint = next((tmp_path / "run" / "runs").glob("*/stages/filter.jsonl"))
    good = json.loads(checkpoint.read_text())
    failed = {"key": good["key"], "status": "failed", "failure": {"id": "p0", "stage": "filter", "reason": "server_error",
                                                                     "raw_reply": None, "input": good["outputs"][0]}}
    checkpoint.write_text(json.dumps(failed) + "\n" + json.dumps(good) + "\n")  # failed once, then done on a rerun
    app = _app([tmp_path / "run"])
    assert app.get("/api/rows", params={"status": "failed"}).json()["total"] == 0
    assert app.get("/api/overview").json()["rows"] == {"kept": 2}
    assert app.get("/api/problem/p0").json()["failures"] == []


def test_hostile_text_is_served_as_data_and_pages_forbid_inline_script(client):
    row = client.get("/api/rows", params={"text": "<script>"}).json()["rows"][0]
    assert row["question"] == HOSTILE
    page = client.get("/")
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'self': no inline script runs
    assert "'self'" in page.headers["content-security-policy"] and page.headers["x-content-type-options"] == "nosniff"
    script = client.get("/static/app.js").text
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "document.write" not in script


def test_the_viewer_is_read_only(client, run):
    before = sorted((p.relative_to(run), p.stat().st_size) for p in run.rglob("*") if p.is_file())
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)("/api/overview").status_code == 405
    client.get("/api/rows", params={"text": "eggs"})
    assert sorted((p.relative_to(run), p.stat().st_size) for p in run.rglob("*") if p.is_file()) == before


def test_a_loopback_viewer_refuses_other_host_names(run):
    app = TestClient(create_app([run]), base_url="http://attacker.example")  # a DNS-rebinding page sends its own name
    assert app.get("/api/overview").status_code == 403
    for host in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765", "localhost"):
        assert _app([run]).get("/api/overview", headers={"host": host}).status_code == 200, host


def test_a_token_is_required_when_set(run):
    app = _app([run], token="s3cret-token")
    assert app.get("/api/overview").status_code == 403
    assert app.get("/api/overview", params={"token": "wrong"}).status_code == 403
    first = app.get("/", params={"token": "s3cret-token"})
    assert first.status_code == 200 and "orca_math_view_token" in first.headers["set-cookie"]
    assert app.get("/api/overview").status_code == 200  # the cookie carries it from now on


def test_no_secret_reaches_a_page(tmp_path, monkeypatch):
    secret = "sk-live-0123456789abcdefSECRET"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    out = make_run(tmp_path / "run")
    manifest_path = next((out / "runs").glob("*/manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    manifest["config"]["client_options"] = {"api_key": secret, "base_url": "http://127.0.0.1:9/v1"}  # a user's own code put one there
    manifest_path.write_text(json.dumps(manifest))
    app = _app([out])
    bodies = [app.get(p).text for p in ("/", "/static/app.js", "/api/overview", "/api/sources", "/api/rows", "/api/compare?a=0&b=0")]
    assert not any(secret in body for body in bodies)
    assert app.get("/api/overview").json()["settings"]["client_options"]["api_key"] == "[redacted]"


def test_the_overview_shows_the_recipe_the_folder_recorded(tmp_path, run):
    import shutil

    from orca_math.recipes import load_recipes, write_run_recipe

    copy = tmp_path / "copy"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns(".orca-math.lock"))
    key = json.loads((run / "summary.json").read_text())["run_key"]
    assert _app([copy]).get("/api/overview").json()["recipe"] is None  # a run started from Python writes none
    recipe = load_recipes(Path(__file__).resolve().parents[1] / "recipes" / "quick-local.yaml", ["engine.concurrency=3"])[0]
    write_run_recipe(recipe, copy, run_key=key)
    shown = _app([copy]).get("/api/overview").json()["recipe"]
    assert shown["engine"]["concurrency"] == 3 and shown["stages"]["rounds"] == 1 and shown["recorded"]["run_key"] == key
    write_run_recipe(recipe, copy, run_key="0123456789abcdef")  # the folder's latest command ran another run
    assert _app([copy]).get("/api/overview").json()["recipe"] is None


def test_only_credentials_are_redacted_not_token_counts():
    from orca_math.readers.summaries import REDACTED, redact

    settings = {"max_tokens": 512, "tokenizer": "gpt2", "completion_tokens": {"a": 1}, "hf_token": "hf_x", "api_key": "sk-x",
                "headers": {"Authorization": "Bearer x"}, "access_token": "y", "token": "z"}
    assert redact(settings) == {"max_tokens": 512, "tokenizer": "gpt2", "completion_tokens": {"a": 1}, "hf_token": REDACTED,
                                "api_key": REDACTED, "headers": {"Authorization": REDACTED}, "access_token": REDACTED, "token": REDACTED}


def test_the_viewer_hides_every_setting_name_the_dataset_card_hides():
    from orca_math.readers.summaries import REDACTED, redact

    settings = {"aws_access_key": "AKIAEXAMPLE", "db_passwd": "hunter22", "Authorisation": "Basic abc", "accessToken": "t",
                "max_tokens": 5}
    assert redact(settings) == {"aws_access_key": REDACTED, "db_passwd": REDACTED, "Authorisation": REDACTED,
                                "accessToken": REDACTED, "max_tokens": 5}


def test_bad_requests_get_one_sentence_errors(client):
    bad = client.get("/api/rows", params={"offset": "x"})
    assert bad.status_code == 400 and bad.json() == {"error": "parameter offset='x' is not a whole number"}
    missing = client.get("/api/problem/no-such-id")
    assert missing.status_code == 404 and "no problem 'no-such-id'" in missing.json()["error"]
    unknown = client.get("/api/overview", params={"source": "7"})
    assert unknown.status_code == 404 and unknown.json() == {"error": "no source '7'"}
    assert client.get("/api/compare", params={"a": "0", "b": "9"}).json() == {"error": "no source '9'"}
    assert client.get("/api/iteration/1").status_code == 404  # not a learning loop


def test_rows_grow_as_a_checkpoint_is_appended(tmp_path, run):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns(".orca-math.lock"))
    stages = next((copy / "runs").glob("*/stages"))
    filter_lines = (stages / "filter.jsonl").read_text().splitlines(keepends=True)
    (stages / "filter.jsonl").write_text("".join(filter_lines[:5]))
    (copy / "summary.json").unlink()  # as while the run is still going
    reader = GenerationReader(copy)
    first = reader.table.page(RowQuery(status="kept"))["total"]
    with open(stages / "filter.jsonl", "a") as handle:
        handle.write("".join(filter_lines[5:]))
        handle.write('{"key": "half a line')  # a line still being written is not read yet
    after = reader.table.page(RowQuery(status="kept"))["total"]
    assert first < after == json.loads((run / "summary.json").read_text())["funnel"]["final_rows"]
    assert not reader.overview()["finished"]


def test_a_running_runs_funnel_counts_items_tokens_and_calls_from_the_checkpoints(tmp_path, run):
    funnel = json.loads((run / "summary.json").read_text())["funnel"]
    copy = as_running(run, tmp_path / "running")
    solve = next((copy / "runs").glob("*/stages/solve.jsonl"))
    lines = solve.read_text().splitlines(keepends=True)
    retried = json.loads(lines[0])
    retried["usage"] = {**retried["usage"], "prompt_tokens": 99999, "calls": 7}  # an earlier try of the first item
    solve.write_text(json.dumps(retried) + "\n" + "".join(lines))  # its later line is the one that counts
    overview = _app([copy]).get("/api/overview").json()
    assert not overview["finished"] and overview["funnel"] == {}
    keys = ("inputs", "outputs", "dropped", "failed", "prompt_tokens", "completion_tokens", "calls")
    assert [{k: s[k] for k in ("name", *keys)} for s in overview["live"]] == [{k: s[k] for k in ("name", *keys)} for s in funnel["stages"]]
    totals = overview["live_totals"]
    assert {k: totals[k] for k in ("prompt_tokens", "completion_tokens", "calls")} == {
        "prompt_tokens": funnel["prompt_tokens"], "completion_tokens": funnel["completion_tokens"],
        "calls": sum(s["calls"] for s in funnel["stages"])}
    assert totals["cost_usd"] is None and funnel["cost_usd"] is None  # the scripted model has no price


def test_a_running_runs_cost_so_far_is_priced_as_its_summary_will_be(tmp_path):
    from orca_math.engine.config import EngineConfig
    from orca_math.models import describe_client
    from orca_math.pipeline import Expand, Filter, Pipeline, Solve, Verify
    from orca_math.testing import ScriptedChatClient
    from tests._view_helpers import SEEDS, responder

    client = ScriptedChatClient(responder=responder)
    priced = EngineConfig(prices={describe_client(client, with_url=False): (1.0, 2.0)}, concurrency=2, progress=False)
    out = tmp_path / "priced"
    Pipeline([Expand(), Solve(), Verify(verifier="program"), Filter()], model=client, engine=priced).run_sync(SEEDS, out=out)
    funnel = json.loads((out / "summary.json").read_text())["funnel"]
    assert funnel["cost_usd"] > 0
    overview = _app([as_running(out, tmp_path / "running")]).get("/api/overview").json()
    assert not overview["finished"]
    live = {stage["name"]: stage["cost_usd"] for stage in overview["live"]}
    assert live == pytest.approx({stage["name"]: stage["cost_usd"] for stage in funnel["stages"]})
    assert live["expand"] > 0 and live["filter"] is None  # Filter calls no model: it has no price
    assert overview["live_totals"]["cost_usd"] == pytest.approx(funnel["cost_usd"])


def test_word_diff_marks_insertions_and_deletions():
    assert word_diff("Tom has 3 apples.", "Tom has 5 red apples.") == [
        ["equal", "Tom has "], ["delete", "3"], ["insert", "5 red"], ["equal", " apples."]]


def test_an_evaluation_folder_shows_scores_and_items(tmp_path):
    folder = report.make_evaluation_folder(tmp_path / "eval")
    items = [{"benchmark": "gsm8k", "id": f"g{i}", "question": f"What is {i} + 1?", "gold": str(i + 1), "response": f"Final answer: {i + 1}",
              "correct": i != 2, "method": "exact", "verdict": "Correct" if i != 2 else "Incorrect"} for i in range(4)]
    items.append({"benchmark": "svamp", "id": "s0", "question": "How many?", "gold": "2", "error": "the model timed out", "correct": False})
    (folder / "items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    reader = open_folder(folder)
    assert isinstance(reader, EvaluationReader)
    app = _app([folder])
    overview = app.get("/api/overview").json()
    assert overview["benchmarks"]["gsm8k"]["pass_at_1"] == 0.8 and overview["rows"] == {"correct": 3, "incorrect": 1, "failed": 1}
    assert app.get("/api/rows", params={"stage": "gsm8k", "status": "incorrect"}).json()["rows"][0]["id"] == "g2"
    assert app.get("/api/problem/s0").json()["items"][0]["error"] == "the model timed out"


def test_a_real_evaluation_folder_shows_its_scores_graded_items_and_replies(tmp_path):
    from orca_math.testing import ScriptedChatClient
    from tests.test_evaluate import EXPECTED_PASS, responder
    from tests.test_evaluate import run as evaluate_run

    result = evaluate_run(ScriptedChatClient(responder=responder()), tmp_path)
    items = [json.loads(line) for line in (result.out / "items.jsonl").read_text().splitlines()]
    app = _app([result.out])
    overview = app.get("/api/overview").json()
    assert overview["kind"] == "evaluation" and {n: overview["benchmarks"][n]["pass_at_1"] for n in EXPECTED_PASS} == EXPECTED_PASS
    assert overview["rows"] == {"correct": sum(i["correct"] for i in items), "incorrect": sum(not i["correct"] for i in items)}
    wrong = app.get("/api/rows", params={"stage": "svamp", "status": "incorrect"}).json()
    expected = [i for i in items if i["benchmark"] == "svamp" and not i["correct"]]
    assert [(r["id"], r["final_answer"], r["gold"]) for r in wrong["rows"]] == [(i["id"], i["extracted_answer"], i["gold"]) for i in expected]
    item = app.get(f"/api/problem/{expected[0]['id']}").json()["items"][0]
    assert {k: item[k] for k in ("response", "verdict", "analysis")} == {k: expected[0][k] for k in ("response", "verdict", "analysis")}


def test_a_running_evaluation_shows_its_graded_and_failed_items_so_far(tmp_path):
    import shutil

    finished, running, item, failure = make_running_evaluation(tmp_path)
    app = _app([running])
    overview = app.get("/api/overview").json()
    assert overview["kind"] == "evaluation" and not overview["finished"] and "(running)" in overview["title"]
    assert overview["benchmarks"]["gsm8k"] == {"n": 6, "correct": 3, "failures": 1, "pass_at_1": 0.5, "methods": {"exact": 5},
                                               "agreement": None}
    failed = app.get("/api/rows", params={"status": "failed"}).json()["rows"]
    assert [(r["id"], r["stage"], r["reason"]) for r in failed] == [(item["id"], "gsm8k", failure["reason"])]
    assert app.get("/api/rows", params={"stage": "svamp"}).json()["total"] == 5
    version = overview["version"]
    for name in ("items.jsonl", "summary.json"):  # the evaluation ends: its files replace the checkpoints
        shutil.copy(finished / name, running / name)
    overview = app.get("/api/overview").json()
    assert overview["finished"] and overview["version"] != version
    assert overview["benchmarks"]["gsm8k"]["pass_at_1"] == 0.6 and overview["rows"] == {"correct": 4, "incorrect": 6}


def test_compare_two_runs_lists_scores_and_only_differing_settings(tmp_path, run):
    other = make_run(tmp_path / "other", seeds=[report.SEEDS[0]])
    app = _app([run, other])
    result = app.get("/api/compare", params={"a": "0", "b": "1"}).json()
    scores = {name: (a, b) for name, a, b in result["scores"]}
    assert scores["seeds"] == (4, 1) and scores["final_rows"][0] > scores["final_rows"][1]
    differing = {k for k, _, _ in result["settings"]}
    assert "seeds_fingerprint" in differing and "model" not in differing
    assert app.get("/api/compare", params={"a": "0"}).status_code == 400


def test_not_a_folder_or_a_taken_port_is_one_sentence_from_the_cli(tmp_path, run):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-m", "orca_math", "view", str(tmp_path / "nothing")], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not a folder" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "orca_math", "view", str(run), "--port", str(port)],
                                capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2 and f"--port {port}" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("host", ["no-such-host.invalid", "192.0.2.1"])  # a name that resolves nowhere; an address not this machine's
def test_a_host_that_is_not_this_machine_is_one_sentence_from_the_cli(run, host):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-m", "orca_math", "view", str(run), "--host", host, "--port", "0"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "ERROR" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and result.stderr.startswith(f"error: --host {host}:")


def test_a_view_server_off_loopback_warns_and_requires_its_token(run):
    import urllib.error
    import urllib.request

    from orca_math.view import ViewServer

    with pytest.warns(UserWarning, match="reachable from other machines"):
        server = ViewServer([run], host="0.0.0.0")
    with server:
        assert server.token and server.url.endswith(f"?token={server.token}")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/api/overview", timeout=30)
        assert refused.value.code == 403
        assert urllib.request.urlopen(f"http://127.0.0.1:{server.port}/api/overview?token={server.token}", timeout=30).status == 200


def _serve(args: list[str]) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen([sys.executable, "-m", "orca_math", "view", *args, "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "http://" in line:
            return process, line.split(" at ")[1].split(" ")[0]
    process.kill()
    raise AssertionError(f"the viewer printed no URL: {process.stderr.read()}")


def test_the_command_serves_loopback_and_off_loopback_needs_a_token(run):
    import urllib.error
    import urllib.request

    process, url = _serve([str(run)])
    try:
        assert url.startswith("http://127.0.0.1:") and "token" not in url
        assert json.loads(urllib.request.urlopen(url + "api/overview", timeout=30).read())["finished"]
    finally:
        process.terminate()
        process.wait(timeout=30)
    process, url = _serve([str(run), "--host", "0.0.0.0"])
    try:
        warning = process.stderr.readline()
        assert "warning" in warning and "token" in warning
        token = url.split("?token=")[1]
        port = url.split(":")[2].split("/")[0]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/overview", timeout=30)
        assert refused.value.code == 403
        allowed = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/overview?token={token}", timeout=30)
        assert allowed.status == 200
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_paging_through_200000_rows_keeps_memory_bounded(tmp_path):
    n = 200_000
    write_big_run(tmp_path / "big", n)
    reader = GenerationReader(tmp_path / "big")
    app = _app([tmp_path / "big"])
    first = app.get("/api/rows", params={"limit": 500}).json()
    assert first["total"] == n and first["rows"][0]["id"] == "p0" and first["facets"]["method"] == {"program": n}
    tracemalloc.start()
    seen = 0
    last = None
    for offset in range(0, n, 500):
        page = app.get("/api/rows", params={"offset": offset, "limit": 500}).json()
        seen += len(page["rows"])
        last = page["rows"][-1]["id"]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seen == n and last == f"p{n - 1}"
    # Paging holds the index (about 40 bytes a row) and one page, never the rows: far below the file's size.
    size = sum(p.stat().st_size for p in (tmp_path / "big").rglob("*.jsonl"))
    assert peak < min(20 * 2**20, size / 4), (peak, size)
    found = app.get("/api/rows", params={"text": "Problem 199999:"}).json()
    assert found["total"] == 1 and found["rows"][0]["id"] == "p199999"
    assert reader.table.page(RowQuery(offset=n - 1, limit=5))["rows"][0]["id"] == f"p{n - 1}"


def test_a_rewritten_checkpoint_is_read_again_and_damaged_lines_are_skipped(tmp_path):
    write_big_run(tmp_path / "run", 300)
    checkpoint = next((tmp_path / "run" / "runs").glob("*/stages/filter.jsonl"))
    reader = GenerationReader(tmp_path / "run")
    assert reader.table.page(RowQuery())["total"] == 300
    lines = checkpoint.read_text().splitlines(keepends=True)
    replacement = checkpoint.with_name("filter.tmp")
    replacement.write_text(lines[0] + "{not json\n" + lines[2])  # a resumed run may rewrite; a damaged line in between
    replacement.replace(checkpoint)
    page = reader.table.page(RowQuery(limit=500))
    assert page["total"] == 200 and {r["id"] for r in page["rows"]} == {f"p{i}" for i in [*range(100), *range(200, 300)]}


def test_verification_evidence_is_shown_whatever_its_shape(tmp_path):
    write_big_run(tmp_path / "run", 3)
    checkpoint = next((tmp_path / "run" / "runs").glob("*/stages/filter.jsonl"))
    record = json.loads(checkpoint.read_text())
    evidence = {"method": "program", "program": "answer = 84 / 2", "result": "42", "votes": {"42": 3, "41": 1}}
    record["outputs"][1]["verification"] = json.dumps(evidence)  # as a dataset column stores it
    record["outputs"][2]["verification"] = "majority"
    checkpoint.write_text(json.dumps(record) + "\n")
    app = _app([tmp_path / "run"])
    assert app.get("/api/rows").json()["facets"]["method"] == {"program": 2, "majority": 1}
    assert app.get("/api/problem/p1").json()["verification"] == evidence
    assert app.get("/api/problem/p0").json()["verification"] == {"method": "program", "votes": 1}
    assert [r["id"] for r in app.get("/api/rows", params={"method": "majority"}).json()["rows"]] == ["p2"]


def test_a_run_whose_process_is_gone_shows_as_stopped(tmp_path):
    write_big_run(tmp_path / "run", 3)
    manifest_path = next((tmp_path / "run" / "runs").glob("*/manifest.json"))
    manifest_path.write_text(json.dumps({**json.loads(manifest_path.read_text()), "status": "running"}))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / "run" / ".orca-math.lock").write_text(f"{gone.pid}\n")
    app = _app([tmp_path / "run"])
    assert app.get("/api/overview").json()["status"] == "stopped"
    (tmp_path / "run" / ".orca-math.lock").write_text(f"{os.getpid()}\n")  # a writer that is alive
    assert app.get("/api/overview").json()["status"] == "running"


def test_without_the_view_extra_the_command_names_it(monkeypatch, run, capsys):
    from orca_math.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if `pip install "orca-math[view]"` had not been run
    assert main(["view", str(run)]) == 2
    error = capsys.readouterr().err
    assert 'pip install "orca-math[view]"' in error and "Traceback" not in error and len(error.strip().splitlines()) == 1
