"""Verification (#22): known targets, majority votes and executed programs decide what is kept, with evidence."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from orca_math.agents import AgentFailedError, ProgramWriter
from orca_math.answers import AnswerPolicy
from orca_math.errors import ConfigError
from orca_math.pipeline import Filter, Pipeline, Solve, Verify, default_stages
from orca_math.records import Verification
from orca_math.testing import ScriptedChatClient
from orca_math.testing.responders import pipeline_responder
from orca_math.verification import KnownTarget, Majority, ProgramCheck, Verifier, VerifyContext

QUESTION = "A farmer has 84 eggs and packs them into 2 equal boxes. How many eggs are in each box?"


def is_program_prompt(messages) -> bool:
    return "variable named answer" in str(messages[-1].content) or "variable named answer" in str(messages[1].content)


def scripted(teacher: str | list[str], program: str = "eggs = 84\nboxes = 2\nanswer = eggs / boxes"):
    """A teacher that answers `teacher` (or each of a list in turn) and a program writer that writes `program`."""
    answers = iter(teacher if isinstance(teacher, list) else [teacher] * 100)

    def respond(messages):
        if is_program_prompt(messages):
            return f"Here it is.\n```python\n{program}\n```"
        return f"84 / 2 = 42 eggs.\nFinal answer: {next(answers)}"

    return ScriptedChatClient(responder=respond)


def run(tmp_path, stages, client, rows=None):
    rows = rows or [{"id": "q1", "question": QUESTION}]
    tmp_path.mkdir(parents=True, exist_ok=True)
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = Pipeline(stages, model=client, progress=False, cache=False).run_sync(seeds, out=tmp_path / "out")
    drops = [json.loads(line) for line in result.outputs["drops"].read_text().splitlines()]
    return result, result.load_dataset().to_list(), drops


# ---------------------------------------------------------------- program


def test_a_program_that_agrees_keeps_the_row_with_the_evidence(tmp_path):
    result, rows, drops = run(tmp_path, [Solve(), Verify("program")], scripted("42"))
    assert not drops and len(rows) == 1
    row = rows[0]
    assert row["verified"] is True and row["final_answer"] == "42"
    evidence = row["verification"]
    assert evidence["method"] == "program" and evidence["program_answer"] == "42" and evidence["program_error"] is None
    assert "answer = eggs / boxes" in evidence["program"]
    assert (evidence["answers"], evidence["votes"]) == (["42"], [1])
    assert result.funnel.stages[1].calls == 1  # one program call per problem


def test_a_program_that_disagrees_drops_the_row_as_unverified_with_both_answers(tmp_path):
    _, rows, drops = run(tmp_path, [Solve(), Verify("program")], scripted("40"))
    assert rows == []
    assert [(d["id"], d["stage"], d["reason"]) for d in drops] == [("q1", "verify", "unverified")]
    evidence = drops[0]["row"]["verification"]
    assert evidence["method"] == "program" and evidence["verified"] is False
    assert evidence["program_answer"] == "42" and evidence["answers"] == ["40"]
    assert "42" in drops[0]["detail"] and "40" in drops[0]["detail"]


def test_a_program_that_fails_in_the_sandbox_leaves_the_row_unverified_with_the_error(tmp_path):
    _, rows, drops = run(tmp_path, [Solve(), Verify("program")], scripted("42", program="import os\nanswer = 42"))
    assert rows == [] and drops[0]["reason"] == "unverified"
    evidence = drops[0]["row"]["verification"]
    assert evidence["program_answer"] is None and "Import" in evidence["program_error"]
    assert "the program gave no answer" in drops[0]["detail"]


def test_keep_unverified_keeps_the_row_marked(tmp_path):
    _, rows, drops = run(tmp_path, [Solve(), Verify("program", keep_unverified=True), Filter()], scripted("40"))
    assert drops == [] and len(rows) == 1
    assert rows[0]["verified"] is False and rows[0]["verification"]["program_answer"] == "42"


def test_the_program_writer_is_asked_again_without_an_answer_assignment():
    client = ScriptedChatClient(["```python\ntotal = 84 / 2\nprint(total)\n```", "```python\nanswer = 84 / 2\n```"])
    result = asyncio.run(ProgramWriter(client).call(question=QUESTION))
    assert result.attempts == 2 and result.output.code == "answer = 84 / 2"
    assert "assigns no variable named `answer`" in client.calls[1]["messages"][-1].content
    with pytest.raises(AgentFailedError, match="assigns no variable named `answer`"):
        ProgramWriter(ScriptedChatClient(responder=lambda m: "The answer is 42.")).run_sync(question=QUESTION)


def test_a_program_writer_that_never_writes_a_program_fails_the_item_and_it_is_retried_on_rerun(tmp_path):
    client = ScriptedChatClient(responder=lambda m: "no code" if is_program_prompt(m) else "Final answer: 42")
    result, rows, _ = run(tmp_path, [Solve(), Verify("program")], client)
    assert rows == [] and result.funnel.stages[1].failed == 1
    second, rows, _ = run(tmp_path, [Solve(), Verify("program")], scripted("42"))
    assert second.resumed and [r["verification"]["method"] for r in rows] == ["program"]


# ---------------------------------------------------------------- majority


@pytest.mark.parametrize("answers, kept", [
    (["42", "42", "42.0", "40"], True),   # 3 of 4 agree
    (["42", "42", "40", "41"], False),    # 2 of 4
    (["42", "42", "40", "40"], False),    # a tie
])
def test_majority_keeps_three_of_four_and_drops_two_of_four(tmp_path, answers, kept):
    _, rows, drops = run(tmp_path, [Solve(k=4), Verify(Majority(min_share=0.75))], scripted(answers))
    if kept:
        assert rows[0]["verified"] is True and rows[0]["final_answer"] == "42"
        assert (rows[0]["verification"]["answers"], rows[0]["verification"]["votes"]) == (["42", "40"], [3, 1])
    else:
        assert rows == [] and drops[0]["reason"] == "unverified"
        assert drops[0]["row"]["verification"]["method"] == "majority"
        assert "of 4 solutions agree" in drops[0]["detail"]


def test_a_solution_without_a_readable_answer_counts_against_the_majority(tmp_path):
    # Four solutions asked for: two answer 42, two never end in one value (three attempts each).
    teacher = ["42", "42", "x + 3", "x + 3"] + ["x + 3"] * 4
    _, rows, drops = run(tmp_path / "half", [Solve(k=4), Verify(Majority(min_share=0.75))], scripted(teacher))
    assert rows == [] and drops[0]["reason"] == "unverified"
    assert "2 of 4 solutions agree on 42" in drops[0]["detail"] and "2 gave no final answer" in drops[0]["detail"]
    solutions = drops[0]["row"]["solutions"]
    assert [s["final_answer"] for s in solutions] == ["42", "42", None, None]
    assert "'x + 3' is not a single value" in solutions[-1]["error"]
    # Three of four readable and agreeing is still 3 of 4: kept, the kept answer is a readable one.
    teacher = ["42", "42", "42", "x + 3"] + ["x + 3"] * 2
    _, rows, _ = run(tmp_path / "three", [Solve(k=4), Verify(Majority(min_share=0.75)), Filter()], scripted(teacher))
    assert rows[0]["verified"] is True and rows[0]["final_answer"] == "42"
    assert rows[0]["answer"].endswith("Final answer: 42")


def test_the_configured_share_decides():
    context = VerifyContext(policy=AnswerPolicy(), agent=lambda role: None)
    row = {"id": "q", "question": QUESTION, "solutions": [{"final_answer": a} for a in ("7", "7", "8")]}
    assert asyncio.run(Majority(min_share=0.6).verify(row, context)).verified is True
    assert asyncio.run(Majority(min_share=0.7).verify(row, context)).verified is False
    with pytest.raises(ConfigError, match="min_share"):
        Majority(min_share=0)


def test_majority_needs_several_solutions():
    with pytest.raises(ConfigError, match="at least 2 solutions"):
        default_stages(verify="majority", solutions=1)


# ---------------------------------------------------------------- known targets, no answer, the policy


def test_known_targets_are_checked_whatever_the_verifier(tmp_path):
    rows_in = [{"id": "s1", "question": QUESTION, "answer": "42"}, {"id": "s2", "question": QUESTION.replace("84", "86"), "answer": "43"}]
    result, rows, drops = run(tmp_path, [Solve(), Verify("program")], scripted("42"), rows=rows_in)
    assert [r["id"] for r in rows] == ["s1"] and rows[0]["verification"]["method"] == "known_target"
    assert rows[0]["verification"]["known_answer"] == "42"
    assert drops[0]["id"] == "s2" and drops[0]["row"]["verification"]["known_answer"] == "43"
    assert result.funnel.stages[1].calls == 0  # no program is written where the answer is known


def test_a_problem_the_solver_calls_unsolvable_is_dropped_with_that_reason(tmp_path):
    result, rows, drops = run(tmp_path, [Solve(), Verify("program")], scripted("unsolvable"))
    assert rows == [] and [(d["reason"], d["stage"]) for d in drops] == [("unsolvable", "verify")]
    assert result.funnel.stages[1].calls == 0
    _, rows, _ = run(tmp_path / "kept", [Solve(), Verify("program", keep_unverified=True), Filter()], scripted("ambiguous"))
    assert rows[0]["verified"] is False and rows[0]["final_answer"] == "ambiguous"


def test_the_answer_policy_decides_and_enters_the_run_key():
    tight, loose = AnswerPolicy(rel_tol=0.0, rounding="none"), AnswerPolicy(rel_tol=0.01)
    assert Verify("program", policy=tight).params()["policy"] != Verify("program", policy=loose).params()["policy"]
    row = {"id": "q", "question": QUESTION, "known_answer": "33.33", "final_answer": "33.3333", "solutions": [{"solution": "…", "final_answer": "33.3333"}]}
    result_loose = asyncio.run(Verify(policy=loose).process(row))
    result_tight = asyncio.run(Verify(policy=tight).process(row))
    assert result_loose.outputs and result_loose.outputs[0]["verified"] is True
    assert not result_tight.outputs and result_tight.drops[0]["reason"] == "unverified"


def test_a_bare_verify_stage_verifies_by_program(tmp_path):
    # Pipeline([..., Solve(), Verify(), Filter()]) as the README writes it: no row is kept unchecked unless asked.
    result, rows, drops = run(tmp_path / "agree", [Solve(), Verify(), Filter()], scripted("42"))
    assert [(r["verification"]["method"], r["verified"]) for r in rows] == [("program", True)]
    assert result.funnel.stages[1].calls == 1
    _, rows, drops = run(tmp_path / "disagree", [Solve(), Verify(), Filter()], scripted("40"))
    assert rows == [] and [(d["reason"], d["row"]["verification"]["method"]) for d in drops] == [("unverified", "program")]


def test_verify_none_keeps_rows_without_a_known_answer_unchecked_only_when_asked(tmp_path):
    _, rows, _ = run(tmp_path, [Solve(), Verify(None)], scripted("42"))
    assert rows[0]["verification"]["method"] == "none" and rows[0]["verified"] is None


# ---------------------------------------------------------------- your own verifier


class EvenAnswers(Verifier):
    """A toy check: even answers are confirmed."""

    name = "even"

    async def verify(self, row, context):
        answer = row["solutions"][0]["final_answer"]
        return Verification(method=self.name, verified=int(answer) % 2 == 0, answer=answer, reason="odd")


def test_a_custom_verifier_is_plugged_in_and_named_in_the_run_key(tmp_path):
    _, rows, _ = run(tmp_path, [Solve(), Verify(EvenAnswers())], scripted("42"))
    assert rows[0]["verification"]["method"] == "even"
    assert Verify(EvenAnswers()).params()["verifier"]["class"] == "EvenAnswers"
    with pytest.raises(ConfigError, match="unknown verifier"):
        Verify("magic")


# ---------------------------------------------------------------- end to end


def test_a_scripted_end_to_end_run_keeps_only_verified_rows_and_the_card_reports_the_shares(tmp_path):
    seeds = [
        {"id": "s1", "question": "Ann has 2 cats and gets 3 more. How many cats does she have?", "answer": "5"},
        {"id": "s2", "question": "Bo has 4 pens and buys 6 more. How many pens?", "answer": "10"},
    ]
    result, rows, drops = run(tmp_path, default_stages(decontaminate=False, rounds=1), ScriptedChatClient(responder=pipeline_responder), rows=seeds)
    assert rows, "the scripted recipe keeps rows"
    assert all(r["verification"]["method"] != "none" and r["verified"] is True for r in rows)
    # the card's promise: every kept answer ends with its canonical final line
    assert all(r["answer"].splitlines()[-1] == f"Final answer: {r['final_answer']}" for r in rows)
    assert "ending in a line `Final answer: <value>`" in (result.out / "README.md").read_text()
    methods = {r["verification"]["method"] for r in rows}
    assert methods == {"known_target", "program"}
    card = (result.out / "README.md").read_text()
    shares = re.search(r"How answers were verified \((\d+) of (\d+) rows verified", card)
    assert shares and shares.group(1) == shares.group(2) == str(len(rows))
    for method in methods:
        count = sum(r["verification"]["method"] == method for r in rows)
        assert f"| `{method}` | yes | {count} | {count / len(rows):.1%} |" in card


def test_known_target_alone():
    context = VerifyContext(policy=AnswerPolicy(), agent=lambda role: None)
    row = {"id": "q", "question": QUESTION, "known_answer": "42", "solutions": [{"final_answer": "40"}, {"final_answer": "42"}]}
    verification = asyncio.run(KnownTarget().verify(row, context))
    assert verification.verified is True and verification.answer == "42" and verification.votes == [1, 1]
    assert ProgramCheck(timeout=1).params() == {"timeout": 1.0}


# ---------------------------------------------------------------- the command line


def _cli(argv, capsys):
    from orca_math.cli import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_solve_says_it_does_not_verify_unless_asked(tmp_path, capsys, monkeypatch):
    from orca_math.cli import build_parser

    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["solve"].format_help().split())
    assert "does NOT verify answers unless --verify program|majority is given" in help_text
    client = ScriptedChatClient(responder=pipeline_responder)
    monkeypatch.setattr("orca_math.cli.generate.model_from_args", lambda args: client)
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps({"id": "q1", "question": "What is 2 + 3?"}) + "\n")
    code, out, _ = _cli(["solve", "--seeds", str(seeds), "--out", str(tmp_path / "a.jsonl"), "--no-progress"], capsys)
    assert code == 0 and "answers were NOT verified: pass --verify program" in out
    code, out, _ = _cli(["solve", "--seeds", str(seeds), "--out", str(tmp_path / "b.jsonl"), "--no-progress", "--verify", "program"], capsys)
    assert code == 0 and "verified (program" in out and "1 of 1 kept" in out
    row = json.loads((tmp_path / "b.jsonl").read_text().splitlines()[0])
    assert row["verification"]["method"] == "program" and row["verified"] is True


def test_majority_without_several_solutions_is_refused_in_one_sentence(tmp_path, capsys):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps({"id": "q1", "question": "What is 2 + 3?", "answer": "5"}) + "\n")
    for command, out in (("solve", tmp_path / "a.jsonl"), ("generate", tmp_path / "g")):
        code, _, err = _cli([command, "--seeds", str(seeds), "--out", str(out), "--verify", "majority"], capsys)
        assert code == 2 and "--verify majority needs at least 2 solutions" in err and "Traceback" not in err


def test_generate_ends_its_funnel_with_one_verification_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("orca_math.cli.generate.model_from_args", lambda args: ScriptedChatClient(responder=pipeline_responder))
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps({"id": "s1", "question": "Ann has 2 cats and gets 3 more. How many cats?", "answer": "5"}) + "\n"
                     + json.dumps({"id": "s2", "question": "Bo has 4 pens and buys 6 more. How many pens?", "answer": "9"}) + "\n")
    base = ["generate", "--seeds", str(seeds), "--no-progress", "--rounds", "1", "--no-decontaminate"]
    code, out, _ = _cli([*base, "--out", str(tmp_path / "g")], capsys)
    assert code == 0
    assert [line for line in out.splitlines() if line.startswith("verification:")] == [
        "verification: 7 of 8 solved problems kept; dropped: 1 unverified"]  # s2's gold (9) is wrong on purpose
    code, out, _ = _cli([*base, "--out", str(tmp_path / "k"), "--keep-unverified"], capsys)
    assert code == 0 and "verification: 8 of 8 solved problems kept; dropped: none" in out


def test_a_run_with_no_verified_row_says_so_in_one_line(tmp_path, capsys, monkeypatch):
    def wrong(messages):
        return re.sub(r"Final answer: (\S+)", r"Final answer: \g<1>1", pipeline_responder(messages))  # 5 -> 51: always wrong

    monkeypatch.setattr("orca_math.cli.generate.model_from_args", lambda args: ScriptedChatClient(responder=wrong))
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps({"id": "s1", "question": "Ann has 2 cats and gets 3 more. How many cats?", "answer": "5"}) + "\n")
    code, out, _ = _cli(["generate", "--seeds", str(seeds), "--out", str(tmp_path / "g"), "--no-progress", "--no-expand",
                         "--rounds", "1", "--no-decontaminate"], capsys)
    assert "final rows: 0" in out
    assert "no verified row: of 2 solved problems none could be verified (dropped: 2 unverified)" in out


def test_a_dry_run_counts_one_program_per_hardened_problem():
    seeds = [{"id": f"s{i}", "question": f"Ann has {i + 2} cats and gets 3 more. How many cats?", "answer": str(i + 5)} for i in range(3)]
    client = ScriptedChatClient(responder=pipeline_responder)
    with_program = Pipeline(default_stages(rounds=2, decontaminate=False), model=client, progress=False).estimate(seeds)
    without = Pipeline(default_stages(rounds=2, decontaminate=False, verify=None), model=client, progress=False).estimate(seeds)
    verify = {s.name: s for s in with_program.stages}["verify"]
    assert verify.calls == 3 * 2  # two hardening rounds of three seeds; seeds and Ask-Me-Anything problems have targets
    assert verify.prompt_tokens > 0 and verify.completion_tokens > 0
    assert {s.name: s for s in without.stages}["verify"].calls == 0
    assert with_program.calls == without.calls + 6


def test_a_second_model_can_write_the_programs(tmp_path):
    teacher = ScriptedChatClient(responder=lambda m: "84 / 2 = 42.\nFinal answer: 42")
    writer = ScriptedChatClient(responder=lambda m: "```python\nanswer = 84 // 2\n```", model="second")
    _, rows, _ = run(tmp_path, [Solve(), Verify("program", model=writer)], teacher)
    assert rows[0]["verification"]["program"] == "answer = 84 // 2" and rows[0]["verified"] is True
    assert len(writer.calls) == 1 and all("variable named answer" not in str(c["messages"]) for c in teacher.calls)


# ---------------------------------------------------------------- a second model writes the programs, from the CLI


def _program_reply(messages) -> str:
    return "```python\nboxes = 7\napples_per_box = 6\nanswer = boxes * apples_per_box\n```"


@pytest.mark.parametrize("command", ["generate", "solve"])
def test_program_model_sends_the_programs_to_a_second_model(tmp_path, capsys, command):
    from orca_math.testing.fault_server import FaultConfig, FaultServer

    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"q{i}", "question": f"Box {i}: 7 boxes hold 6 apples each. How many apples?"}) + "\n"
                             for i in range(3)))
    with FaultServer(FaultConfig()) as teacher, FaultServer(FaultConfig(reply=_program_reply, model="writer")) as writer:
        flags = ["--seeds", str(seeds), "--no-progress", "--model", teacher.base_url, "--program-model", writer.base_url]
        if command == "generate":
            argv = ["generate", *flags, "--out", str(tmp_path / "g"), "--no-expand", "--rounds", "0", "--no-decontaminate"]
        else:
            argv = ["solve", *flags, "--out", str(tmp_path / "s.jsonl"), "--verify", "program"]
        code, out, err = _cli(argv, capsys)
        assert code == 0, err
        to_writer = [json.dumps(r.body) for r in writer.chat_requests()]
        to_teacher = [json.dumps(r.body) for r in teacher.chat_requests()]
    assert len(to_writer) == 3 and all("variable named answer" in body for body in to_writer)
    assert len(to_teacher) == 3 and not any("variable named answer" in body for body in to_teacher)
    if command == "generate":
        import datasets

        rows = datasets.load_from_disk(str(tmp_path / "g" / "dataset")).to_list()
        assert "verification: 3 of 3 solved problems kept" in out
    else:
        rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [(r["verification"]["method"], r["verification"]["program_answer"], r["verified"]) for r in rows] == [("program", "42", True)] * 3


def test_program_model_without_program_verification_is_refused_in_one_sentence(tmp_path, capsys):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps({"id": "q1", "question": "What is 2 + 3?", "answer": "5"}) + "\n")
    for argv in (["generate", "--out", str(tmp_path / "g"), "--verify", "majority", "--solutions", "3"],
                 ["generate", "--out", str(tmp_path / "g"), "--verify", "none"],
                 ["solve", "--out", str(tmp_path / "s.jsonl")]):
        code, _, err = _cli([*argv, "--seeds", str(seeds), "--program-model", "openai:gpt-4o-mini"], capsys)
        assert code == 2 and "--program-model needs --verify program" in err and "Traceback" not in err
    with pytest.raises(ConfigError, match="verify_model is only used by a verifier that calls a model"):
        default_stages(verify="majority", solutions=3, verify_model="openai:gpt-4o-mini")


def test_a_recipe_names_the_program_model_field(tmp_path):
    from orca_math.recipes import GenerateRecipe
    from orca_math.recipes.fields import RecipeError

    recipe = GenerateRecipe.model_validate({"kind": "generate", "seeds": {"path": "seeds.jsonl"},
                                            "verification": {"program_model": "http://127.0.0.1:9/v1"}})
    verify = next(stage for stage in recipe.stage_list() if isinstance(stage, Verify))
    assert verify.verifier.name == "program" and "127.0.0.1:9" in str(verify.model_spec)
    wrong = GenerateRecipe.model_validate({"kind": "generate", "seeds": {"path": "seeds.jsonl"},
                                           "verification": {"verify": "majority", "program_model": "openai:gpt-4o-mini"}})
    with pytest.raises(RecipeError, match="verification.program_model needs verification.verify: program"):
        wrong.stage_list()


def test_a_dry_run_prices_the_programs_at_the_second_models_price(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-sent")
    seeds = [{"id": "s1", "question": "Ann has 2 cats and gets 3 more. How many cats?", "answer": "5"}]
    prices = {"teacher-x": (10.0, 10.0), "writer-y": (1.0, 1.0)}  # USD per million tokens, in and out

    def verify_cost(verify_model):
        stages = default_stages(rounds=1, decontaminate=False, verify_model=verify_model)
        estimate = Pipeline(stages, model="openai:teacher-x", progress=False, prices=prices).estimate(seeds)
        verify = {s.name: s for s in estimate.stages}["verify"]
        assert verify.calls > 0
        return verify.cost_usd, (verify.prompt_tokens + verify.completion_tokens) / 1e6

    same, tokens = verify_cost(None)
    second, _ = verify_cost("openai:writer-y")
    assert same == pytest.approx(10.0 * tokens) and second == pytest.approx(1.0 * tokens)


def test_generate_verify_majority_asks_k_solutions_above_temperature_zero(tmp_path, capsys):
    import datasets

    from orca_math.testing.fault_server import FaultConfig, FaultServer

    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"q{i}", "question": f"Box {i}: 7 boxes hold 6 apples each. How many apples?"}) + "\n"
                             for i in range(2)))
    with FaultServer(FaultConfig()) as teacher:
        code, out, err = _cli(["generate", "--seeds", str(seeds), "--out", str(tmp_path / "g"), "--no-progress", "--model", teacher.base_url,
                               "--no-expand", "--rounds", "0", "--no-decontaminate", "--verify", "majority", "--solutions", "3"], capsys)
        bodies = [r.body for r in teacher.chat_requests()]
    assert code == 0, err
    assert len(bodies) == 6 and all(body["temperature"] == 0.7 for body in bodies)
    assert "verification: 2 of 2 solved problems kept" in out
    rows = datasets.load_from_disk(str(tmp_path / "g" / "dataset")).to_list()
    assert [(r["verification"]["method"], r["verification"]["answers"], r["verification"]["votes"]) for r in rows] == [("majority", ["42"], [3])] * 2


@pytest.mark.parametrize(("solve", "message"), [
    (dict(k=4, temperature=0.0), "above temperature 0"),
    (dict(k=1), "at least 2 solutions"),
])
def test_a_hand_built_pipeline_refuses_a_majority_vote_it_cannot_hold(solve, message):
    with pytest.raises(ConfigError, match=message):
        Pipeline([Solve(**solve), Verify(Majority())], model=ScriptedChatClient(responder=pipeline_responder))
    Pipeline([Solve(k=4), Verify(Majority())], model=ScriptedChatClient(responder=pipeline_responder))  # 0.7 by default
