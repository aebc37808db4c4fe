"""Curation policies on a scripted student that solves the even-numbered problems: keep bands, harden the easy ones."""

from __future__ import annotations

import json
import re

import datasets
import pytest

from orca_math.errors import ConfigError
from orca_math.pipeline import Filter, Pipeline, Solve, Verify
from orca_math.pipeline.curation import Curation, curation_stages
from orca_math.pipeline.difficulty import Difficulty
from orca_math.testing import ScriptedChatClient
from orca_math.testing.responders import pipeline_responder

SEEDS = [{"id": f"p{n}", "question": f"Ann has {n} cats and gets 3 more. How many cats?", "answer": f"#### {n + 3}"}
         for n in range(1, 7)]


def _text(messages) -> str:
    return "\n".join(str(m.content) for m in messages)


def even_student(messages) -> str:
    """Right (n + 3) on the even-numbered problems, wrong on the others, and wrong on any hardened problem."""
    n = int(re.search(r"Ann has (\d+) cats", _text(messages)).group(1))
    return f"Final answer: {n + 3}" if n % 2 == 0 else "Final answer: 1"


def _run(tmp_path, policies, student=even_student, k=2):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(row) + "\n" for row in SEEDS))
    teacher = ScriptedChatClient(responder=pipeline_responder)
    stages = [Solve(), Verify(), Filter(), Difficulty(ScriptedChatClient(responder=student, model="student"), k=k)]
    stages += curation_stages(Curation.parse(policies), stages)
    result = Pipeline(stages, model=teacher, managed=False, progress=False, concurrency=3).run_sync(seeds, out=tmp_path / "out")
    return result, teacher


def _rows(result) -> dict[str, dict]:
    return {row["id"]: row for row in datasets.load_from_disk(str(result.dataset_path))}


def _drops(result) -> list[dict]:
    return [json.loads(line) for line in result.outputs["drops"].read_text().splitlines()]


def test_keep_unsolved_keeps_the_odd_problems_and_drops_the_rest_with_a_reason(tmp_path):
    result, _ = _run(tmp_path, ["keep:unsolved"])
    assert sorted(_rows(result)) == ["p1", "p3", "p5"]
    assert sorted((d["id"], d["reason"], d["stage"]) for d in _drops(result)) == [
        ("p2", "difficulty_band", "keep_bands"), ("p4", "difficulty_band", "keep_bands"), ("p6", "difficulty_band", "keep_bands")]
    assert "easy (pass rate 1.0); keeping unsolved" in _drops(result)[0]["detail"]


def test_keep_hard_on_the_even_student_keeps_none_since_its_misses_are_unsolved_not_hard(tmp_path):
    result, _ = _run(tmp_path, ["keep:hard"])
    assert _rows(result) == {}  # pass rates are 1.0 (easy) and 0.0 (unsolved): no row is in the hard band
    assert sorted(d["detail"].split(" (")[0] for d in _drops(result)) == ["easy"] * 3 + ["unsolved"] * 3


def test_keep_hard_keeps_exactly_the_hard_band(tmp_path):
    def one_in_four_on_odd(messages):  # odd problems: only the first of the four samples is right
        n = int(re.search(r"Ann has (\d+) cats", _text(messages)).group(1))
        one_in_four_on_odd.seen[n] = one_in_four_on_odd.seen.get(n, 0) + 1
        return f"Final answer: {n + 3}" if n % 2 == 0 or one_in_four_on_odd.seen[n] == 1 else "Final answer: 1"

    one_in_four_on_odd.seen = {}
    result, _ = _run(tmp_path, ["keep:hard"], student=one_in_four_on_odd, k=4)
    # Odd problems: 1 of 4 right -> pass rate 0.25 -> hard; even: 4 of 4 -> easy.
    rows = _rows(result)
    assert sorted(rows) == ["p1", "p3", "p5"] and {row["difficulty"] for row in rows.values()} == {"hard"}
    assert {row["pass_rate"] for row in rows.values()} == {0.25}


def test_harden_easy_sends_exactly_the_easy_problems_back_once(tmp_path):
    result, teacher = _run(tmp_path, ["harden-easy:2"])
    suggested = [_text(call["messages"]) for call in teacher.calls if '"suggestions"' in _text(call["messages"])]
    hardened = sorted(int(re.search(r"Ann has (\d+) cats", text).group(1)) for text in suggested)
    assert hardened == [2, 4, 6]  # the easy ones; their new versions are wrong for the student, so no second round
    rows = _rows(result)
    assert {"p2-e1", "p4-e1", "p6-e1"} <= set(rows) and not any(pid.endswith("-e2") for pid in rows)
    new = rows["p2-e1"]
    assert new["parent_id"] == "p2" and new["origin"] == "suggester_editor" and new["round"] == 1
    assert new["difficulty"] == "unsolved" and new["answer"]  # solved by the teacher, measured against the student
    assert rows["p2"]["difficulty"] == "easy"  # the easy row itself stays


def test_harden_easy_stops_after_r_rounds_even_when_everything_stays_easy(tmp_path):
    result, teacher = _run(tmp_path, ["harden-easy:2"], student=pipeline_responder)  # the teacher's own answers: always right
    rows = _rows(result)
    assert sum(pid.endswith("-e1") for pid in rows) == 6
    assert sum(pid.endswith("-e1-e2") for pid in rows) == 6
    assert not any(pid.endswith("-e3") for pid in rows)
    assert sum('"suggestions"' in _text(call["messages"]) for call in teacher.calls) == 12


def test_harden_easy_then_keep_drops_the_easy_originals(tmp_path):
    result, _ = _run(tmp_path, ["harden-easy", "keep:hard,unsolved,medium"])
    assert sorted(_rows(result)) == ["p1", "p2-e1", "p3", "p4-e1", "p5", "p6-e1"]


def test_a_rerun_with_curation_makes_no_calls(tmp_path):
    _run(tmp_path, ["harden-easy", "keep:unsolved"])
    result, teacher = _run(tmp_path, ["harden-easy", "keep:unsolved"])
    assert teacher.calls == [] and result.resumed


@pytest.mark.parametrize(("values", "message"), [
    (["keep:"], "keep: takes bands"),
    (["keep:tricky"], "keep: takes bands"),
    (["harden-easy:0"], "whole number of rounds"),
    (["harden-easy:x"], "whole number of rounds"),
    (["prop2diff"], "orca-math learn --curate prop2diff"),
    (["everything"], "unknown --curate policy"),
])
def test_bad_policies_are_one_sentence(values, message):
    with pytest.raises(ConfigError, match=message):
        Curation.parse(values)


@pytest.mark.parametrize("policy", ["prop2diff", "uniform"])
def test_a_learning_loop_policy_given_to_generate_points_at_a_learn_flag_that_takes_it(policy):
    from orca_math.cli import build_parser

    with pytest.raises(ConfigError) as refused:
        Curation.parse([policy])
    command = re.search(r"orca-math (learn [^)]*)\)", str(refused.value)).group(1).split()
    args = build_parser().parse_args([*command, "--model", "m", "--data", "d", "--out", "o"])
    assert args.curate == policy


def test_curation_needs_a_difficulty_stage():
    with pytest.raises(ConfigError, match="add --student"):
        curation_stages(Curation.parse(["keep:hard"]), [Solve(), Verify(), Filter()])


def _generate_with_the_even_student(tmp_path, *flags: str):
    """`orca-math generate` on SEEDS, as a whole process, with a loopback teacher and the even student
    (right on even-numbered problems, wrong on the rest) sampled twice per problem: (process, student calls)."""
    import subprocess
    import sys

    from orca_math.testing.batch_wire import responder_reply
    from orca_math.testing.fault_server import FaultConfig, FaultServer

    def student_reply(messages):  # the even_student, on the wire's message dicts
        n = int(re.search(r"Ann has (\d+) cats", " ".join(str(m.get("content")) for m in messages)).group(1))
        return f"Final answer: {n + 3}" if n % 2 == 0 else "Final answer: 1"

    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(row) + "\n" for row in SEEDS))
    with FaultServer(FaultConfig(reply=responder_reply)) as teacher, FaultServer(FaultConfig(reply=student_reply)) as student:
        done = subprocess.run(
            [sys.executable, "-m", "orca_math", "generate", "--seeds", str(seeds), "--out", str(tmp_path / "out"),
             "--model", teacher.base_url, "--no-expand", "--rounds", "0", "--no-dedup", "--no-decontaminate", "--no-progress",
             "--student", student.base_url, "--student-samples", "2", *flags],
            capture_output=True, text=True, timeout=300)
        return done, len(student.chat_requests())


def test_cli_student_and_curate_flags(tmp_path):
    done, asked = _generate_with_the_even_student(tmp_path, "--curate", "keep:unsolved")
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(datasets.load_from_disk(str(tmp_path / "out" / "dataset"))["id"]) == ["p1", "p3", "p5"]
    assert asked == 12
    assert "drop: difficulty_band × 3" in done.stdout
    assert "difficulty against the student: easy 3, medium 0, hard 0, unsolved 3" in done.stdout


def test_cli_band_shares_with_a_target(tmp_path):
    done, _ = _generate_with_the_even_student(tmp_path, "--target-rows", "3", "--band-shares", "unsolved=0.67,easy=0.33")
    assert done.returncode == 0, done.stderr[-2000:]
    assert datasets.load_from_disk(str(tmp_path / "out" / "dataset"))["id"] == ["p1", "p2", "p3"]
    assert "target reached: 3 rows (unsolved 2 of 2, easy 1 of 1)" in done.stdout


def test_cli_curate_without_a_student_is_one_sentence(tmp_path):
    import subprocess
    import sys

    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(row) + "\n" for row in SEEDS))
    done = subprocess.run([sys.executable, "-m", "orca_math", "generate", "--seeds", str(seeds), "--out", str(tmp_path / "out"),
                           "--curate", "keep:hard"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "add --student SPEC" in done.stderr and "Traceback" not in done.stderr


def _run_shares(tmp_path, shares, target, seeds=SEEDS, limit=None):
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in seeds))
    teacher = ScriptedChatClient(responder=pipeline_responder)
    student = ScriptedChatClient(responder=even_student, model="student")
    stages = [Solve(), Verify(), Filter(), Difficulty(student, k=2)]
    pipeline = Pipeline(stages, model=teacher, managed=False, progress=False, concurrency=2, target_rows=target, band_shares=shares)
    return pipeline.run_sync(path, out=tmp_path / "out", limit=limit), teacher


MORE_SEEDS = [{"id": f"p{n}", "question": f"Ann has {n} cats and gets 3 more. How many cats?", "answer": f"#### {n + 3}"}
              for n in range(1, 21)]


def test_band_shares_fill_each_band_to_its_share_in_seed_order(tmp_path):
    result, teacher = _run_shares(tmp_path, {"unsolved": 0.75, "easy": 0.25}, 4, seeds=MORE_SEEDS)
    rows = datasets.load_from_disk(str(result.dataset_path))
    assert rows["id"] == ["p1", "p2", "p3", "p5"]  # 3 unsolved (odd) and 1 easy (even); p4 is beyond the easy share
    assert [(d["id"], d["reason"]) for d in _drops(result)] == [("p4", "beyond_target")]
    assert "band easy: its quota of 1 rows is filled" in _drops(result)[0]["detail"]
    assert len(teacher.calls) == 5  # p1..p5 solved, nothing more drawn
    target = result.extra["target"]
    assert target.met and target.quotas == {"unsolved": 3, "easy": 1} and target.rows == 4
    summary = json.loads(result.outputs["summary"].read_text())
    assert summary["target"]["kept_by_band"] == {"unsolved": 3, "easy": 2}


def test_band_shares_that_the_seeds_cannot_fill_say_how_far_each_band_got(tmp_path):
    result, _ = _run_shares(tmp_path, {"hard": 0.5, "easy": 0.5}, 4, limit=6)
    target = result.extra["target"]
    assert not target.met and target.seeds_drawn == 6
    assert "target not reached: 2 of 4 rows (hard 0 of 2, easy 2 of 2)" in target.message()
    assert datasets.load_from_disk(str(result.dataset_path))["id"] == ["p2", "p4"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"band_shares": {"hard": 0.5, "easy": 0.5}}, "add --target-rows"),
    ({"band_shares": {"hard": 0.5, "easy": 0.4}, "target_rows": 5}, "add up to 1"),
    ({"band_shares": {"tricky": 1.0}, "target_rows": 5}, "unknown band"),
    ({"band_shares": {"hard": 0, "easy": 1.0}, "target_rows": 5}, "must be a number in"),
])
def test_bad_band_shares_are_one_sentence(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Pipeline([Solve(), Verify(), Filter(), Difficulty("http://127.0.0.1:9/v1")], model="local", **kwargs)


def test_band_shares_need_a_difficulty_stage():
    with pytest.raises(ConfigError, match="add a Difficulty stage"):
        Pipeline([Solve(), Verify(), Filter()], model="local", target_rows=4, band_shares={"hard": 1.0})


def test_band_shares_flag_parses_pairs_and_names_a_bad_one():
    from orca_math.pipeline.targets import parse_band_shares

    assert parse_band_shares("hard=0.5,medium=0.3,easy=0.2") == {"hard": 0.5, "medium": 0.3, "easy": 0.2}
    with pytest.raises(ConfigError, match="got 'easy'"):
        parse_band_shares("hard=0.5,easy")
    with pytest.raises(ConfigError, match="got 'easy=lots'"):
        parse_band_shares("hard=0.5,easy=lots")
