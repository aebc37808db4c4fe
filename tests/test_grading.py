"""GradingPolicy: the Grader agent on a scripted client, exact mode, hybrid routing and the audit."""

from __future__ import annotations

import asyncio

import pytest

from orca_math.agents import Grader
from orca_math.agents.base import AgentFailedError
from orca_math.answers import check_answer
from orca_math.errors import ConfigError
from orca_math.grading import GradingPolicy, GradingStats, grading_policy
from orca_math.testing import ScriptedChatClient

CORRECT = "Error analysis: Both final answers are 72.\nFinal Verdict: Correct"
INCORRECT = "Error analysis: The student says 70 but the setter says 72.\nFinal Verdict: Incorrect"
QUESTION = "Natalia sold 48 clips in April and half as many in May. How many in total?"
GSM8K_SOLUTION = "In May she sold 48/2 = <<48/2=24>>24 clips.\nIn total 48+24 = <<48+24=72>>72.\n#### 72"


def llm_grader(replies=(), responder=None, **kwargs) -> tuple[GradingPolicy, ScriptedChatClient]:
    client = ScriptedChatClient(replies, responder=responder)
    return GradingPolicy(client, **kwargs), client


# --------------------------------------------------------------------------- the Grader agent


@pytest.mark.parametrize("reply, label", [(CORRECT, "Correct"), (INCORRECT, "Incorrect")])
def test_grader_agent_reads_the_verdict_and_the_analysis(reply, label):
    client = ScriptedChatClient([reply])
    verdict = Grader(client).run_sync(question=QUESTION, reference_solution=GSM8K_SOLUTION, student_solution="72")
    assert verdict.verdict == label and verdict.method == "llm"
    assert verdict.analysis.startswith(("Both", "The student says"))
    prompt = "\n".join(str(m.content) for m in client.calls[0]["messages"])
    assert GSM8K_SOLUTION in prompt and QUESTION in prompt


def test_malformed_llm_verdicts_raise_after_the_retries():
    grader, client = llm_grader(["I think it's fine.", "Final Verdict: maybe", "Correct!"], mode="llm")
    with pytest.raises(AgentFailedError, match="no usable reply after 3 attempt"):
        grader.grade_sync(question=QUESTION, reference_answer="72", student_solution="Final answer: 72")
    assert len(client.calls) == 3
    assert grader.stats.llm == 0


def test_a_reply_that_parses_on_retry_is_used():
    grader, client = llm_grader(["no verdict here", CORRECT], mode="llm")
    verdict = grader.grade_sync(question=QUESTION, reference_answer="72", student_solution="Final answer: 72")
    assert verdict.verdict == "Correct" and len(client.calls) == 2


# --------------------------------------------------------------------------- exact mode


@pytest.mark.parametrize(
    "student, label",
    [
        ("48 + 24 = 72\nFinal answer: 72", "Correct"),
        ("Final answer: $72.00", "Correct"),
        ("The answer is 72 clips.", "Correct"),
        ("48 + 20 = 68\nFinal answer: 68", "Incorrect"),
        ("Final answer: 72.5", "Incorrect"),
    ],
)
def test_exact_mode_decides_with_the_answer_checker(student, label):
    grader = GradingPolicy(mode="exact")
    verdict = grader.grade_sync(question=QUESTION, reference_answer="72", student_solution=student)
    assert (verdict.verdict, verdict.method) == (label, "exact")
    assert verdict.analysis.endswith(".") and "\n" not in verdict.analysis
    assert grader.stats.exact == 1 and grader.stats.cant_tell == 0


@pytest.mark.parametrize("student", ["I am not sure how to solve this.", "", "Final answer: 2:3"])
def test_exact_mode_counts_cant_tell_as_incorrect_and_says_so(student):
    grader = GradingPolicy(mode="exact")
    verdict = grader.grade_sync(question=QUESTION, reference_answer="72", student_solution=student)
    assert (verdict.verdict, verdict.method) == ("Incorrect", "exact")
    assert "could not tell" in verdict.analysis
    assert grader.stats.to_dict()["cant_tell"] == 1


def test_the_reference_answer_is_extracted_from_a_reference_solution():
    grader = GradingPolicy(mode="exact")
    assert grader.grade_sync(question=QUESTION, reference_solution=GSM8K_SOLUTION, student_solution="Final answer: 72").correct
    assert not grader.grade_sync(question=QUESTION, reference_solution=GSM8K_SOLUTION, student_solution="Final answer: 24").correct


# No marker, and two numbers neither of which is set aside (not the question's, not in an aside): a guess.
GUESS = "Natalia sold 72 clips, more than the 70 she planned."


@pytest.mark.parametrize("reference", ["72", "70"])
def test_exact_mode_counts_a_guess_as_cant_tell(reference):
    assert check_answer(reference, GUESS).confidence == "guess"  # the checker alone would decide it
    grader = GradingPolicy(mode="exact")
    verdict = grader.grade_sync(question=QUESTION, reference_answer=reference, student_solution=GUESS)
    assert (verdict.verdict, verdict.method) == ("Incorrect", "exact")
    assert "could not tell for sure" in verdict.analysis and "guess" in verdict.analysis
    assert verdict.analysis.endswith(".") and "\n" not in verdict.analysis
    assert grader.stats.cant_tell == grader.stats.unsure == 1 and grader.stats.exact == 1


def test_min_confidence_sets_what_the_checker_may_decide():
    lenient = GradingPolicy(mode="exact", min_confidence="guess")
    assert lenient.grade_sync(question=QUESTION, reference_answer="72", student_solution=GUESS).correct
    assert lenient.stats.cant_tell == 0
    strict = GradingPolicy(mode="exact", min_confidence="marker")
    sole = "So she sold 72 clips in all."
    assert not strict.grade_sync(question=QUESTION, reference_answer="72", student_solution=sole).correct
    assert strict.grade_sync(question=QUESTION, reference_answer="72", student_solution="Final answer: 72").correct
    assert "min_confidence='marker'" in repr(strict)
    with pytest.raises(ValueError, match="unknown min_confidence 'none'"):
        GradingPolicy(mode="exact", min_confidence="none")


def test_exact_mode_needs_no_model_and_never_calls_one():
    grader, client = llm_grader(mode="exact")
    grader.grade_sync(question=QUESTION, reference_answer="72", student_solution="no answer")
    assert client.calls == []


# --------------------------------------------------------------------------- hybrid routing


def test_hybrid_sends_exactly_the_cant_tell_cases_to_the_llm():
    batch = [
        ("Final answer: 72", "exact", "Correct"),
        ("Final answer: 71", "exact", "Incorrect"),
        ("I could not work it out.", "llm", "Incorrect"),
        ("So she sold 72 clips in all", "exact", "Correct"),  # the only number of the closing sentence
        # Two answers are a hedge (#23): "not_equal" by the checker itself, never sent to the LLM.
        ("Final answer: 72 or 73", "exact", "Incorrect"),
        ("Final answer: 12:00", "llm", "Incorrect"),
        (GUESS, "llm", "Correct"),  # the checker would say equal, but only as a guess
    ]
    sure = [check_answer("72", student, min_confidence="sole").result for student, _, _ in batch]
    cant_tell = sure.count("cant_tell")
    assert cant_tell == 3 and check_answer("72", GUESS).result == "equal"  # the batch is mixed as intended
    llm_labels = iter([label for _, method, label in batch if method == "llm"])
    grader, client = llm_grader(responder=lambda messages: f"Error analysis: Judged.\nFinal Verdict: {next(llm_labels)}")
    verdicts = [grader.grade_sync(question=QUESTION, reference_answer="72", student_solution=s) for s, _, _ in batch]
    assert len(client.calls) == cant_tell
    assert [v.method for v in verdicts] == [method for _, method, _ in batch]
    assert [v.verdict for v in verdicts] == [label for _, _, label in batch]
    assert grader.stats == GradingStats(exact=4, llm=3, cant_tell=3, unsure=1)


def test_hybrid_shows_the_llm_the_reference_solution_or_the_answer_line():
    grader, client = llm_grader([CORRECT, CORRECT])
    grader.grade_sync(question=QUESTION, reference_solution=GSM8K_SOLUTION, reference_answer="72", student_solution="no idea")
    grader.grade_sync(question=QUESTION, reference_answer="72", student_solution="no idea")
    prompts = ["\n".join(str(m.content) for m in call["messages"]) for call in client.calls]
    assert GSM8K_SOLUTION in prompts[0]
    assert "Final answer: 72" in prompts[1] and "####" not in prompts[1]


def test_a_malformed_llm_reply_in_hybrid_mode_raises():
    grader, _ = llm_grader(responder=lambda messages: "no verdict")
    with pytest.raises(AgentFailedError):
        grader.grade_sync(question=QUESTION, reference_answer="72", student_solution="no idea")


# --------------------------------------------------------------------------- audit


def test_audit_samples_deterministic_verdicts_and_reports_agreement():
    def always_correct(messages):
        return CORRECT

    grader, client = llm_grader(responder=always_correct, audit_rate=0.5, seed=7)
    students = [f"Step {i}.\nFinal answer: {72 if i % 2 else 70}" for i in range(40)]
    verdicts = [grader.grade_sync(question=QUESTION, reference_answer="72", student_solution=s) for s in students]
    stats = grader.stats
    assert all(v.method == "exact" for v in verdicts)  # the audit never changes the verdict
    assert 8 <= stats.audited <= 32 and len(client.calls) == stats.audited
    # The LLM always says Correct, so it agrees exactly with the audited deterministic Corrects.
    audited_correct = stats.audit_agreements
    assert 0 < audited_correct < stats.audited
    assert stats.agreement_rate == pytest.approx(audited_correct / stats.audited)

    again, _ = llm_grader(responder=always_correct, audit_rate=0.5, seed=7)
    for s in reversed(students):  # another order: the same items are sampled
        again.grade_sync(question=QUESTION, reference_answer="72", student_solution=s)
    assert again.stats == stats


def test_no_audit_means_no_llm_calls_for_decided_cases_and_no_rate():
    grader, client = llm_grader(responder=lambda messages: CORRECT)
    grader.grade_sync(question=QUESTION, reference_answer="72", student_solution="Final answer: 72")
    assert client.calls == [] and grader.stats.agreement_rate is None


def test_a_failed_audit_call_keeps_the_deterministic_verdict():
    grader, _ = llm_grader(responder=lambda messages: "gibberish", audit_rate=1.0)
    verdict = grader.grade_sync(question=QUESTION, reference_answer="72", student_solution="Final answer: 72")
    assert verdict.correct and verdict.method == "exact"
    assert grader.stats.audit_failures == 1 and grader.stats.audited == 0


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "fuzzy"}, "unknown grading mode 'fuzzy'"),
        ({"mode": "llm"}, "needs a grader model"),
        ({"mode": "hybrid"}, "needs a grader model"),
        ({"mode": "exact", "audit_rate": 0.1}, "with an audit needs a grader model"),
        ({"mode": "exact", "audit_rate": 1.5}, "between 0 and 1"),
    ],
)
def test_bad_configuration_is_a_clear_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        GradingPolicy(**kwargs)


def test_missing_reference_and_bad_types_are_clear_errors():
    grader = GradingPolicy(mode="exact")
    with pytest.raises(ValueError, match="needs a reference"):
        grader.grade_sync(question=QUESTION, student_solution="Final answer: 72")
    with pytest.raises(TypeError, match="student_solution must be a string"):
        grader.grade_sync(question=QUESTION, reference_answer="72", student_solution=72)
    with pytest.raises(ValueError, match="reference_answer is empty"):
        grader.grade_sync(question=QUESTION, reference_answer=" ", student_solution="Final answer: 72")


# --------------------------------------------------------------------------- the question, and the old names


def test_the_question_is_passed_to_the_checker_so_its_numbers_are_set_aside():
    question = "Of 50 students, 15 walk to school. How many take the bus?"
    reply = "Out of 50 students, 15 walk, so 35 take the bus."
    policy = GradingPolicy(mode="exact")
    grading = asyncio.run(policy.assess(question=question, reference_answer="35", student_solution=reply))
    assert grading.verdict.verdict == "Correct" and grading.comparison.confidence == "sole"
    assert "set aside: 50 students (question), 15 walk (question)" in grading.comparison.reason
    # With a question that gives none of those numbers, the same reply is only a guess: can't tell.
    other = asyncio.run(policy.assess(question=QUESTION, reference_answer="35", student_solution=reply))
    assert other.verdict.verdict == "Incorrect" and other.comparison.result == "cant_tell"
    assert policy.stats.unsure == 1


def test_the_old_names_still_work_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="AnswerGrader is now GradingPolicy"):
        from orca_math.grading import AnswerGrader
    assert AnswerGrader is GradingPolicy
    agent = Grader(ScriptedChatClient([CORRECT]))
    with pytest.warns(DeprecationWarning, match=r"grader=\.\.\.\) is now grader_agent="):
        policy = GradingPolicy(mode="hybrid", grader=agent)
    assert policy.grader_agent is agent
    with pytest.warns(DeprecationWarning, match=r"\.grader is now \.grader_agent"):
        assert policy.grader is agent
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match="two different agents"):
        GradingPolicy(mode="hybrid", grader=agent, grader_agent=Grader(ScriptedChatClient()))


def test_grading_policy_takes_a_policy_or_a_mode_and_the_old_keyword_warns():
    policy = GradingPolicy(mode="exact")
    assert grading_policy(policy, where="f") is policy
    assert grading_policy("exact", where="f").mode == "exact"
    assert grading_policy(None, where="f", default="exact").mode == "exact"
    with pytest.warns(DeprecationWarning, match=r"f\(grader=\.\.\.\) is now grading="):
        assert grading_policy(None, policy, where="f") is policy
    with pytest.raises(ConfigError, match="f needs grading="):
        grading_policy(None, where="f")
    with pytest.raises(ConfigError, match="needs a grader model"):
        grading_policy("hybrid", where="f")
    with pytest.raises(TypeError, match="grading must be a GradingPolicy or a mode name, not int"):
        grading_policy(3, where="f")
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match="disagree"):
        grading_policy(GradingPolicy(mode="exact"), policy, where="f")


# --------------------------------------------------------------------------- the answer policy


def test_the_answer_policy_decides_every_deterministic_verdict():
    from orca_math.answers import AnswerPolicy

    reply = "The share is 0.33.\nFinal answer: 0.33"
    # 0.33 is 1/3 rounded; the default policy lets either side be the rounding.
    assert GradingPolicy(mode="exact").grade_sync(question=QUESTION, reference_answer="1/3", student_solution=reply).correct
    strict = GradingPolicy(mode="exact", answer_policy=AnswerPolicy(rounding="none"))
    assert not strict.grade_sync(question=QUESTION, reference_answer="1/3", student_solution=reply).correct
    # Tolerances reach the checker too: 100.001 is within rel_tol=1e-4 of 100.0000 only when unrounded.
    loose = GradingPolicy(mode="exact", answer_policy=AnswerPolicy(rel_tol=0.01))
    assert loose.grade_sync(question=QUESTION, reference_answer="1.000001", student_solution="Final answer: 1.005001").correct
    assert not GradingPolicy(mode="exact").grade_sync(
        question=QUESTION, reference_answer="1.000001", student_solution="Final answer: 1.005001").correct


def test_the_answer_policy_is_in_the_params_and_the_confidence_floor_is_the_policys():
    from orca_math.answers import RULE_SET_VERSION, AnswerPolicy

    policy = GradingPolicy(mode="exact", min_confidence="marker", answer_policy=AnswerPolicy(rounding="reply"))
    params = policy.params()
    assert params["answer_policy"]["rule_set"] == RULE_SET_VERSION
    assert params["answer_policy"]["rounding"] == "reply"
    # One floor: the grading policy's min_confidence replaces the answer policy's.
    assert params["answer_policy"]["min_confidence"] == "marker" == params["min_confidence"]
    assert policy.params() != GradingPolicy(mode="exact", min_confidence="marker").params()
    with pytest.raises(ConfigError, match="answer_policy must be an AnswerPolicy, not dict"):
        GradingPolicy(mode="exact", answer_policy={"rounding": "none"})


def test_labelling_and_evaluation_keys_hold_the_answer_policy():
    from orca_math.answers import AnswerPolicy
    from orca_math.evaluate.stages import GradeStage
    from orca_math.learn.labelling import LabelStage

    default, other = AnswerPolicy(min_confidence="sole"), AnswerPolicy(rounding="none")
    assert LabelStage(GradingPolicy(mode="exact")).params() != LabelStage(
        GradingPolicy(mode="exact", answer_policy=other)).params()
    assert LabelStage(GradingPolicy(mode="exact")).params()["grader"]["answer_policy"] == default.params()
    assert GradeStage(mode="exact").params()["answer_policy"] == default.params()
    assert GradeStage(mode="exact", answer_policy=other).params()["answer_policy"]["rounding"] == "none"
    with pytest.raises(ConfigError, match="answer_policy must be an AnswerPolicy"):
        GradeStage(mode="exact", answer_policy="strict")
