"""Preference building (the Orca-Math recipe), TRL formats and presets, on hand-made attempts."""

from __future__ import annotations

import datasets
import pytest

from orca_math.learn import (
    ORCA_CHAT_TEMPLATE,
    DatasetFormatError,
    PreferenceOptions,
    build_preferences,
    get_preset,
    make_prompt,
    orca_chat_template,
    orca_completion,
    orca_prompt,
    sft_dataset,
    suggest_kto_weights,
    validate_format,
)
from orca_math.records import Attempt


def attempt(pid: str, index: int, label: bool | None, response: str | None = None) -> Attempt:
    return Attempt(
        problem_id=pid, sample_index=index, question=f"Question {pid}?", reference=f"teacher {pid}",
        response=response or f"{'right' if label else 'wrong'} {pid}{index}", label=label,
    )


def corpus() -> list[Attempt]:
    """ok: all correct; bad: all wrong; mix: 2 right, 2 wrong; w1..w3: one wrong each (donors)."""
    rows = [attempt("ok", i, True) for i in range(4)]
    rows += [attempt("bad", i, False) for i in range(3)]
    rows += [attempt("mix", i, label) for i, label in enumerate([True, False, True, False])]
    rows += [attempt(f"w{k}", 0, False) for k in range(1, 4)]
    return rows


def rows_for(dataset: datasets.Dataset, pid: str) -> list[dict]:
    return [row for row in dataset if row["problem_id"] == pid]


def test_mixed_problem_pairs_every_positive_with_every_negative():
    data = build_preferences(corpus())
    pairs = {(r["chosen"], r["rejected"]) for r in rows_for(data.dpo, "mix")}
    positives = [" teacher mix", " right mix0", " right mix2"]
    negatives = [" wrong mix1", " wrong mix3"]
    assert pairs == {(p, n) for p in positives for n in negatives}
    assert len(rows_for(data.dpo, "mix")) == 6
    assert {r["prompt"] for r in rows_for(data.dpo, "mix")} == {"USER: Question mix?\nASSISTANT:"}


def test_all_wrong_problem_pairs_the_teacher_with_each_wrong_response():
    data = build_preferences(corpus())
    assert [(r["chosen"], r["rejected"]) for r in rows_for(data.dpo, "bad")] == [
        (" teacher bad", f" wrong bad{i}") for i in range(3)
    ]


def test_all_correct_problem_borrows_negatives_from_other_problems_deterministically():
    options = PreferenceOptions(borrow_negatives_from=3, seed=7)
    data = build_preferences(corpus(), options)
    rejected = [r["rejected"] for r in rows_for(data.dpo, "ok")]
    # 5 positives (teacher + 4 correct) x 3 borrowed negatives, each from a different other problem.
    assert len(rejected) == 15
    borrowed = sorted(set(rejected))
    assert len(borrowed) == 3 and all(text.startswith(" wrong ") and "ok" not in text for text in borrowed)
    owner = {" " + a.response: a.problem_id for a in corpus()}
    assert len({owner[text] for text in borrowed}) == 3
    assert data.stats.borrowed_negatives == 3
    # Same seed, shuffled input: same choice; another seed may choose differently but keeps the count.
    again = build_preferences(list(reversed(corpus())), options)
    assert [r["rejected"] for r in rows_for(again.dpo, "ok")] == rejected
    other = build_preferences(corpus(), PreferenceOptions(borrow_negatives_from=3, seed=8))
    assert len(rows_for(other.dpo, "ok")) == 15


def test_borrowing_is_capped_by_the_number_of_donor_problems_and_can_be_off():
    data = build_preferences(corpus(), PreferenceOptions(borrow_negatives_from=50))
    assert data.stats.borrowed_negatives == 5  # bad, mix, w1, w2, w3
    none = build_preferences(corpus(), PreferenceOptions(borrow_negatives_from=0))
    assert rows_for(none.dpo, "ok") == [] and none.stats.borrowed_negatives == 0


def test_kto_rows_label_each_positive_and_negative_with_the_teacher_once():
    data = build_preferences(corpus(), PreferenceOptions(borrow_negatives_from=2))
    mix = [(r["completion"], r["label"]) for r in rows_for(data.kto, "mix")]
    assert mix == [(" teacher mix", True), (" right mix0", True), (" right mix2", True),
                   (" wrong mix1", False), (" wrong mix3", False)]
    ok = rows_for(data.kto, "ok")
    assert sum(r["label"] for r in ok) == 5 and sum(not r["label"] for r in ok) == 2


def test_sft_rows_are_the_positives():
    data = build_preferences(corpus())
    assert data.sft.column_names == ["prompt", "completion"]
    assert len(data.sft) == 5 + 1 + 3 + 3  # ok, bad, mix, w1..w3 (teacher each)


def test_max_pairs_per_problem_caps_deterministically():
    options = PreferenceOptions(max_pairs_per_problem=4, seed=3)
    first = build_preferences(corpus(), options)
    second = build_preferences(corpus(), options)
    assert len(rows_for(first.dpo, "mix")) == 4 and len(rows_for(first.dpo, "ok")) == 4
    assert len(rows_for(first.dpo, "bad")) == 3  # below the cap: untouched
    assert first.dpo.to_list() == second.dpo.to_list()
    assert first.stats.pairs_per_problem_max == 4


def test_positives_teacher_only_ablation():
    data = build_preferences(corpus(), PreferenceOptions(positives="teacher"))
    assert {r["chosen"] for r in rows_for(data.dpo, "mix")} == {" teacher mix"}
    assert len(rows_for(data.dpo, "mix")) == 2
    assert [r["completion"] for r in rows_for(data.kto, "ok") if r["label"]] == [" teacher ok"]


def test_positives_student_only_ablation_leaves_unsolved_problems_without_positives():
    data = build_preferences(corpus(), PreferenceOptions(positives="student"))
    assert rows_for(data.dpo, "bad") == []
    assert all(not r["label"] for r in rows_for(data.kto, "bad"))
    assert {r["chosen"] for r in rows_for(data.dpo, "mix")} == {" right mix0", " right mix2"}
    assert " teacher mix" not in data.sft["completion"]


def test_negatives_none_ablation_gives_no_pairs_and_only_desirable_rows():
    data = build_preferences(corpus(), PreferenceOptions(negatives="none"))
    assert len(data.dpo) == 0 and data.dpo.column_names == ["prompt", "chosen", "rejected", "problem_id"]
    assert all(data.kto["label"]) and len(data.kto) == len(data.sft) == 12
    assert data.stats.borrowed_negatives == 0 and data.stats.desirable_to_undesirable is None


def test_stats_are_exact():
    stats = build_preferences(corpus(), PreferenceOptions(borrow_negatives_from=4)).stats
    assert (stats.problems, stats.all_correct, stats.all_wrong, stats.mixed) == (6, 1, 4, 1)
    # pairs: ok 5x4, bad 1x3, mix 3x2, w1..w3 1x1 each
    assert stats.dpo_pairs == 20 + 3 + 6 + 3
    assert stats.pairs_per_problem_max == 20
    assert stats.pairs_per_problem_mean == pytest.approx(32 / 6)
    assert (stats.kto_desirable, stats.kto_undesirable) == (12, 4 + 3 + 2 + 3)
    assert stats.desirable_to_undesirable == pytest.approx(1.0)
    assert (stats.suggested_desirable_weight, stats.suggested_undesirable_weight) == (1.0, 1.0)
    assert stats.borrowed_negatives == 4 and stats.problems_without_reference == 0
    assert stats.to_dict()["dpo_pairs"] == 32


@pytest.mark.parametrize("desirable, undesirable", [(100, 10), (10, 100), (7, 5), (3, 1)])
def test_suggested_kto_weights_balance_within_trls_range(desirable, undesirable):
    d_weight, u_weight = suggest_kto_weights(desirable, undesirable)
    ratio = d_weight * desirable / (u_weight * undesirable)
    assert 1.0 <= ratio <= 4 / 3 + 1e-9
    assert 1.0 in (d_weight, u_weight)  # only the minority side is scaled
    assert suggest_kto_weights(5, 0) == (1.0, 1.0)


def test_conversational_style_uses_messages():
    data = build_preferences(corpus(), style="conversational")
    row = rows_for(data.dpo, "bad")[0]
    assert row["prompt"] == [{"role": "user", "content": "Question bad?"}]
    assert row["chosen"] == [{"role": "assistant", "content": "teacher bad"}]
    validate_format(data.dpo, "dpo")
    validate_format(data.kto, "kto")


def test_bad_attempts_are_rejected():
    with pytest.raises(ValueError, match="has no label"):
        build_preferences([attempt("x", 0, None)])
    with pytest.raises(ValueError, match="appears twice"):
        build_preferences([attempt("x", 0, True), attempt("x", 0, False)])
    with pytest.raises(TypeError, match="unexpected keyword"):
        PreferenceOptions(borrow_from=4)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="positives='both'"):
        PreferenceOptions(positives="both")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_pairs_per_problem"):
        PreferenceOptions(max_pairs_per_problem=0)


# --------------------------------------------------------------------------- formats


def test_orca_prompt_and_completion_concatenate_to_the_papers_format():
    assert orca_prompt(" What is 2+3? ") + orca_completion("5") == "USER: What is 2+3?\nASSISTANT: 5"
    assert make_prompt("q", "conversational") == [{"role": "user", "content": "q"}]
    assert "USER: " in ORCA_CHAT_TEMPLATE and "ASSISTANT:" in ORCA_CHAT_TEMPLATE


class _FakeTokenizer:
    def __init__(self, adds_bos: bool):
        self.bos_token_id, self.adds_bos = 1, adds_bos

    def __call__(self, text: str) -> dict:
        return {"input_ids": ([1] if self.adds_bos else []) + [7]}


def test_orca_chat_template_adds_bos_only_for_tokenizers_that_add_it():
    assert orca_chat_template(_FakeTokenizer(adds_bos=True)) == "{{ bos_token }}" + ORCA_CHAT_TEMPLATE
    assert orca_chat_template(_FakeTokenizer(adds_bos=False)) == ORCA_CHAT_TEMPLATE


def test_sft_dataset_from_question_answer_rows():
    dataset = sft_dataset([{"question": "q1", "answer": "a1", "id": "x"}])
    assert dataset.to_list() == [{"prompt": "USER: q1\nASSISTANT:", "completion": " a1"}]
    validate_format(dataset, "sft")
    with pytest.raises(DatasetFormatError, match=r"missing or not text: answer \(found keys: q, question\)"):
        sft_dataset([{"question": "q1", "q": 1}])
    with pytest.raises(DatasetFormatError, match="at least one row"):
        sft_dataset([])


def test_validators_name_missing_and_found_columns():
    wrong = datasets.Dataset.from_dict({"question": ["q"], "answer": ["a"]})
    with pytest.raises(DatasetFormatError, match="prompt and completion .* found: question, answer"):
        validate_format(wrong, "sft")
    with pytest.raises(DatasetFormatError, match="missing: label; found: prompt, completion"):
        validate_format(datasets.Dataset.from_dict({"prompt": ["p"], "completion": ["c"]}), "kto")
    with pytest.raises(DatasetFormatError, match="'label' column must be True/False, got 1"):
        integer_labels = {"prompt": ["p"], "completion": ["c"], "label": [1]}
        validate_format(datasets.Dataset.from_dict(integer_labels), "kto")
    mixed = datasets.Dataset.from_dict(
        {"prompt": [[{"role": "user", "content": "q"}]], "chosen": ["a"], "rejected": ["b"]}
    )
    with pytest.raises(DatasetFormatError, match="mixes standard and conversational"):
        validate_format(mixed, "dpo")
    with pytest.raises(DatasetFormatError, match="Unknown dataset kind 'ppo'"):
        validate_format(wrong, "ppo")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- presets


def test_presets_and_overrides():
    tiny = get_preset("tiny", max_steps=2)
    assert (tiny.bf16, tiny.model_dtype, tiny.max_steps) == (False, "float32", 2)
    mistral = get_preset("mistral-7b", use_lora=True)
    assert mistral.bf16 and mistral.completion_only_loss and mistral.sft_epochs == 1.0 and mistral.use_lora
    sources = {row["name"]: row["source"] for row in mistral.describe()}
    assert sources["sft_epochs"] == "paper" and sources["dpo_beta"] == "trl-default"
    with pytest.raises(ValueError, match=r"'dpo_betta' \(did you mean 'dpo_beta'\?\)"):
        get_preset("mistral-7b", dpo_betta=0.2)
    with pytest.raises(ValueError, match="Unknown preset 'llama'"):
        get_preset("llama")
    with pytest.raises(ValueError, match="per_device_train_batch_size must be >= 1"):
        get_preset("tiny", per_device_train_batch_size=0)
