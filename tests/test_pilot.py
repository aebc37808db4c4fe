"""Pilot runs: measure a recipe on a few seeds, project calls, tokens, cost and time for a row target."""

from __future__ import annotations

import json

import pytest

from orca_math._sync import run_sync
from orca_math.pipeline import Expand, Filter, Pipeline, Solve, Verify
from orca_math.pipeline.pilot import SeedTally, project, run_pilot, seed_of
from orca_math.testing import ScriptedChatClient
from orca_math.testing.responders import pipeline_responder

#: Known yields: a seed with one number gives 2 rows for 3 calls, one with two numbers 3 rows for 4 calls.
SEEDS = [{"id": f"s{i}", "question": (f"Bo has {i} pens and buys {i + 2} more. How many pens?" if i % 3 == 0
                                      else f"Ann has {i + 3} cats. How many cats does she have?"),
          "answer": f"#### {2 * i + 2}" if i % 3 == 0 else f"#### {i + 3}"} for i in range(1, 61)]
PRICES = {"scripted": (1.0, 2.0)}


def _pipeline(client, **kwargs):
    return Pipeline([Expand(), Solve(), Verify(), Filter()], model=client, progress=False, concurrency=4, prices=PRICES,
                    **kwargs)


def _seeds(tmp_path):
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in SEEDS))
    return path


def test_the_pilots_projection_is_within_a_tenth_of_the_full_runs_calls(tmp_path):
    seeds = _seeds(tmp_path)
    pilot_client = ScriptedChatClient(responder=pipeline_responder)
    projection = run_sync(run_pilot(_pipeline(pilot_client), seeds, out=tmp_path / "out", pilot=12, target_rows=60))
    assert len(pilot_client.calls) == 12 * 3 + 4 * 1  # 12 seeds, 4 of them with two numbers
    estimate = json.loads((tmp_path / "out" / "estimate.json").read_text())
    assert estimate["pilot_seeds"] == 12 and estimate["target_rows"] == 60

    client = ScriptedChatClient(responder=pipeline_responder)
    result = _pipeline(client, target_rows=60).run_sync(seeds, out=tmp_path / "out")
    actual = sum(stage.calls for stage in result.funnel.stages)
    assert abs(projection.calls["expected"] - actual) <= 0.1 * actual
    assert projection.calls["low"] <= projection.calls["expected"] <= projection.calls["high"]
    # The pilot's replies were cached in OUT: the real run paid only for the seeds after the pilot's.
    assert len(client.calls) == actual - len(pilot_client.calls)
    assert projection.cost_usd["online"]["expected"] > 0
    assert projection.cost_usd["batch"]["expected"] == pytest.approx(projection.cost_usd["online"]["expected"] / 2)
    # After the run, the card puts the actual cost per kept row next to the estimate.
    card = (tmp_path / "out" / "README.md").read_text()
    assert "Cost per kept row: $" in card and "the pilot of 12 seeds estimated $" in card
    # The actual cost per row counts the pilot's replies, which the real run was served from the cache: the
    # pilot paid for them, and the estimate projects every call. So the two agree on this known-yield recipe.
    actual, estimated = _card_costs(card)
    assert abs(actual - estimated) <= 0.1 * estimated
    assert "this run paid $" in card


def _card_costs(card: str) -> tuple[float, float]:
    """(actual cost per kept row, the pilot's estimate) as the dataset card states them."""
    import re

    actual = re.search(r"Cost per kept row: \$([0-9.]+)", card)
    estimated = re.search(r"seeds estimated \$([0-9.]+)", card)
    assert actual and estimated, card
    return float(actual.group(1)), float(estimated.group(1))


def test_the_table_names_each_stage_and_the_three_prices(tmp_path):
    from orca_math.pipeline.pilot import run_pilot_sync

    projection = run_pilot_sync(_pipeline(ScriptedChatClient(responder=pipeline_responder)), _seeds(tmp_path),
                                out=tmp_path / "out", pilot=6, target_rows=100, hourly_usd=2.5)
    table = projection.render()
    for word in ("expand", "solve", "verify", "filter", "cost online", "cost batch", "cost self_hosted", "time online",
                 "90% range"):
        assert word in table
    assert projection.cost_usd["self_hosted"] is not None and projection.wall_seconds["self_hosted"] is not None
    stages = {s["name"]: s for s in projection.stages}
    assert stages["expand"]["yield"] == pytest.approx(14 / 6)  # 6 seeds -> 6 kept seeds + 8 new problems
    assert stages["solve"]["failure_rate"] == 0


def test_a_spread_pilot_has_a_wide_range_and_an_empty_one_says_so():
    even = [SeedTally(rows=2, calls=3)] * 10
    spread = [SeedTally(rows=0, calls=3)] * 5 + [SeedTally(rows=4, calls=3)] * 5

    class Funnel:
        seconds, prompt_tokens, completion_tokens, stages = 1.0, 100, 100, []

    narrow = project(even, Funnel, target_rows=100, price=None, batch_multiplier=0.5, hourly_usd=None, model="m")
    wide = project(spread, Funnel, target_rows=100, price=None, batch_multiplier=0.5, hourly_usd=None, model="m")
    assert narrow.calls == {"expected": 150.0, "low": 150.0, "high": 150.0}
    assert wide.calls["expected"] == 150.0 and wide.calls["high"] - wide.calls["low"] > 50
    assert "no price for model 'm'" in " ".join(wide.notes)
    empty = project([SeedTally(calls=3)] * 4, Funnel, target_rows=100, price=None, batch_multiplier=0.5, hourly_usd=None,
                    model="m")
    assert "kept no row" in " ".join(empty.notes)


def test_seed_of_follows_generated_ids():
    seeds = {"s1", "seed-000012-1a2b3c4d"}
    assert seed_of("s1-ama2-h1", seeds) == "s1" and seed_of("seed-000012-1a2b3c4d-ama1", seeds) == "seed-000012-1a2b3c4d"
    assert seed_of("other", seeds) is None


def _cli(*argv):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "orca_math", *map(str, argv)], capture_output=True, text=True, timeout=300)


def test_cli_pilot_prints_the_table_writes_estimate_json_and_the_real_run_reuses_its_replies(tmp_path):
    from orca_math.testing.batch_wire import responder_reply
    from orca_math.testing.fault_server import FaultConfig, FaultServer

    seeds = _seeds(tmp_path)
    common = ["generate", "--seeds", seeds, "--out", tmp_path / "out", "--rounds", "0", "--no-dedup", "--no-decontaminate",
              "--verify", "none", "--no-progress", "--target-rows", "20", "--price", "fault-model=1,2"]
    with FaultServer(FaultConfig(reply=responder_reply)) as server:
        pilot = _cli(*common, "--model", server.base_url, "--dry-run", "--pilot", "4")
        pilot_calls = len(server.chat_requests())
        real = _cli(*common, "--model", server.base_url)
        real_calls = len(server.chat_requests()) - pilot_calls
    assert pilot.returncode == 0, pilot.stderr[-2000:]
    assert "projection for --target-rows 20" in pilot.stdout and "cost online" in pilot.stdout
    assert "estimate.json" in pilot.stdout
    estimate = json.loads((tmp_path / "out" / "estimate.json").read_text())
    assert estimate["pilot_seeds"] == 4 and estimate["cost_per_row_usd"]["online"]["expected"] > 0
    assert real.returncode == 0, real.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert real_calls == sum(s["calls"] for s in summary["funnel"]["stages"]) - pilot_calls  # the pilot's were cached
    assert "the pilot of 4 seeds estimated $" in (tmp_path / "out" / "README.md").read_text()


@pytest.mark.parametrize("extra", [["--pilot", "4", "--target-rows", "20"], ["--dry-run", "--pilot", "4"], ["--hourly-usd", "2"]])
def test_cli_pilot_needs_dry_run_and_a_target(tmp_path, extra):
    done = _cli("generate", "--seeds", _seeds(tmp_path), "--out", tmp_path / "out", *extra)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--pilot" in done.stderr or "--hourly-usd" in done.stderr


def test_a_student_stage_is_priced_at_the_students_price_not_the_teachers(tmp_path):
    import re

    from orca_math.pipeline.difficulty import Difficulty

    def student(messages):
        n = int(re.search(r"has (\d+)", "\n".join(str(m.content) for m in messages)).group(1))
        return f"Final answer: {n}"

    def projected(prices, folder):
        stages = [Solve(), Verify(), Filter(), Difficulty(ScriptedChatClient(responder=student, model="student"), k=2)]
        pipeline = Pipeline(stages, model=ScriptedChatClient(responder=pipeline_responder), progress=False, prices=prices)
        return run_sync(run_pilot(pipeline, _seeds(tmp_path), out=tmp_path / folder, pilot=6, target_rows=60))

    unpriced = projected({"scripted": (1.0, 2.0)}, "a")
    priced = projected({"scripted": (1.0, 2.0), "student": (1000.0, 1000.0)}, "b")
    assert any("difficulty stage's calls (student) are not priced: add --price student=IN,OUT" in n for n in unpriced.notes)
    assert priced.cost_usd["online"]["expected"] > 10 * unpriced.cost_usd["online"]["expected"] > 0
    assert not any("not priced" in n for n in priced.notes)


def _student_pipeline(student, prices, **kwargs):
    from orca_math.pipeline.difficulty import Difficulty

    stages = [Solve(), Verify(), Filter(), Difficulty(student, k=2)]
    return Pipeline(stages, model=ScriptedChatClient(responder=pipeline_responder), progress=False, prices=prices, **kwargs)


def _number_student(messages):
    import re

    content = " ".join(str(m.content if hasattr(m, "content") else m.get("content")) for m in messages)
    return "Final answer: " + re.search(r"has (\d+)", content).group(1)


def test_the_card_shows_the_cost_per_row_of_the_priced_calls_when_the_student_has_no_price(tmp_path):
    """The 7B recipe: a priced teacher, a self-hosted student without a price; the card still states the cost a row."""
    student = ScriptedChatClient(responder=_number_student, model="student")
    run_sync(run_pilot(_student_pipeline(student, PRICES), _seeds(tmp_path), out=tmp_path / "out", pilot=6, target_rows=30))
    _student_pipeline(student, PRICES, target_rows=30).run_sync(_seeds(tmp_path), out=tmp_path / "out")
    card = (tmp_path / "out" / "README.md").read_text()
    assert "not counting the difficulty stage's calls, which have no price" in card
    actual, estimated = _card_costs(card)
    assert abs(actual - estimated) <= 0.1 * estimated


def test_a_served_student_is_priced_by_the_name_its_server_gives_as_the_real_run_prices_it(tmp_path):
    """`--price NAME=...` for the name the run's meter uses (the served model's) prices the pilot and the dry run too."""
    from orca_math.testing.fault_server import FaultConfig, FaultServer

    prices = {**PRICES, "ckpt-m1": (1000.0, 1000.0)}
    with FaultServer(FaultConfig(reply=_number_student, model="ckpt-m1")) as server:
        projection = run_sync(run_pilot(_student_pipeline(server.base_url, prices), _seeds(tmp_path), out=tmp_path / "out",
                                        pilot=4, target_rows=20))
        estimate = _student_pipeline(server.base_url, prices).estimate(_seeds(tmp_path), limit=4)
        real = _student_pipeline(server.base_url, prices).run_sync(_seeds(tmp_path), out=tmp_path / "real", limit=4)
    assert not any("not priced" in note for note in projection.notes), projection.notes
    stage = {s.name: s for s in estimate.stages}["difficulty"]
    assert stage.cost_usd > 0 and "not priced" not in stage.note
    real_cost = {s.name: s for s in real.funnel.stages}["difficulty"].cost_usd
    assert real_cost is not None and real_cost > 0  # the run's meter prices the same name


def _parity_student(messages):
    """Says the first number after 'has', when it is even: right on 'Ann has N cats' for odd seeds i (N = i + 3), never on
    the pens seeds (their answer is a sum). So 4 seeds in every 12 are easy and the rest unsolved."""
    import re

    content = " ".join(str(m.content if hasattr(m, "content") else m.get("content")) for m in messages)
    n = int(re.search(r"has (\d+)", content).group(1))
    return f"Final answer: {n}" if n % 2 == 0 else "Final answer: 0"


def test_with_band_shares_the_pilot_projects_the_seeds_the_scarcest_band_needs(tmp_path):
    shares = {"easy": 0.75, "unsolved": 0.25}  # 12 easy rows of 16; a seed is easy a third of the time, so 36 seeds
    student = ScriptedChatClient(responder=_parity_student, model="student")
    projection = run_sync(run_pilot(_student_pipeline(student, PRICES, target_rows=16, band_shares=shares), _seeds(tmp_path),
                                    out=tmp_path / "out", pilot=12, target_rows=16))
    assert projection.band_quotas == {"easy": 12, "unsolved": 4} and "band quotas: easy 12, unsolved 4" in projection.render()
    result = _student_pipeline(student, PRICES, target_rows=16, band_shares=shares).run_sync(_seeds(tmp_path), out=tmp_path / "out")
    assert result.extra["target"].met
    actual = sum(stage.calls for stage in result.funnel.stages)
    assert abs(projection.calls["expected"] - actual) <= 0.1 * actual
    assert projection.seeds["expected"] == pytest.approx(36)  # not 16 / 1 row a seed: the easy band sets the pace


def test_a_band_the_pilot_never_saw_is_named_instead_of_projected():
    class Funnel:
        seconds, prompt_tokens, completion_tokens, stages = 1.0, 100, 100, []

    tallies = [SeedTally(rows=1, calls=3, rows_by_band={"easy": 1}), SeedTally(rows=1, calls=3, rows_by_band={"hard": 1})] * 2
    projection = project(tallies, Funnel, target_rows=10, price=None, batch_multiplier=0.5, hourly_usd=None, model="m",
                         band_quotas={"easy": 5, "medium": 5})
    assert "kept no row of band medium" in " ".join(projection.notes)
    assert projection.calls == {"expected": 0.0, "low": 0.0, "high": 0.0}
    # Half the seeds give an easy row: 8 easy rows need 16 seeds (2 hard rows need 4), and their calls.
    shares = project(tallies, Funnel, target_rows=10, price=None, batch_multiplier=0.5, hourly_usd=None, model="m",
                     band_quotas={"easy": 8, "hard": 2})
    assert shares.seeds["expected"] == 16 and shares.calls["expected"] == 48


def test_a_pilot_without_the_response_cache_says_the_real_run_pays_for_its_calls_again(tmp_path):
    projection = run_sync(run_pilot(_pipeline(ScriptedChatClient(responder=pipeline_responder), cache=False), _seeds(tmp_path),
                                    out=tmp_path / "out", pilot=3, target_rows=10))
    assert any("the response cache is off (--no-cache), so the real run pays for the pilot's calls again" in note
               for note in projection.notes)
    cached = run_sync(run_pilot(_pipeline(ScriptedChatClient(responder=pipeline_responder)), _seeds(tmp_path),
                                out=tmp_path / "cached", pilot=3, target_rows=10))
    assert not any("cache is off" in note for note in cached.notes)
