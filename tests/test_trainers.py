"""SFT, DPO and KTO adapters train a tiny random Mistral for 2 steps on CPU, from our own datasets."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from orca_math.learn import (  # noqa: E402
    DatasetFormatError,
    PreferenceOptions,
    Trainer,
    build_preferences,
    get_preset,
    get_trainer,
    sft_dataset,
)
from orca_math.records import Attempt  # noqa: E402
from tests._learn_helpers import save_tiny_mistral  # noqa: E402

QUESTIONS = {
    "p1": ("Tom has 3 apples and buys 2 more. How many apples does he have?", "3 + 2 = 5. Final answer: 5"),
    "p2": ("A box holds 4 pens. How many pens are in 3 boxes?", "4 x 3 = 12. Final answer: 12"),
    "p3": ("Sara had 10 sweets and ate 4. How many are left?", "10 - 4 = 6. Final answer: 6"),
}


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer Mistral with the bundled SmolLM2 tokenizer, saved to a folder."""
    return save_tiny_mistral(tmp_path_factory.mktemp("tiny-mistral"))


def _attempts() -> list[Attempt]:
    rows = []
    for pid, (question, reference) in QUESTIONS.items():
        final = reference.rsplit(" ", 1)[-1]
        for index, correct in enumerate([True, False] if pid != "p3" else [True, True]):
            response = reference if correct else f"I think it is 7. Final answer: 7 ({pid})"
            rows.append(Attempt(problem_id=pid, sample_index=index, question=question, response=response,
                                reference=reference, final_answer=final, label=correct, method="exact"))
    return rows


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def _assert_trained(adapter, checkpoint: Path, base: Path) -> None:
    losses = [entry["loss"] for entry in adapter.log_history if "loss" in entry]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
    assert (checkpoint / "config.json").exists() and (checkpoint / "tokenizer_config.json").exists()
    before, after = _weights(base), _weights(checkpoint)
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert len(changed) > len(before) // 2, f"only {changed} changed"


@pytest.mark.parametrize("kind", ["sft", "dpo", "kto"])
def test_adapter_trains_two_steps_on_our_datasets(kind, tiny_model_dir, tmp_path):
    data = build_preferences(_attempts(), PreferenceOptions(borrow_negatives_from=2))
    dataset = {"sft": data.sft, "dpo": data.dpo, "kto": data.kto}[kind]
    adapter = get_trainer(kind)
    assert isinstance(adapter, Trainer)
    preset = get_preset("tiny", max_steps=2)
    checkpoint = adapter.train(dataset, tmp_path / kind, preset, model=tiny_model_dir)
    assert checkpoint == tmp_path / kind
    _assert_trained(adapter, checkpoint, tiny_model_dir)
    # The checkpoint's tokenizer now renders chats in the Orca format it was trained on.
    saved = AutoTokenizer.from_pretrained(checkpoint)
    chat = [{"role": "user", "content": "What is 2+3?"}]
    rendered = saved.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert rendered == "USER: What is 2+3?\nASSISTANT:"


def test_table_backed_adapter_trains_two_steps_for_every_method(tiny_model_dir, tmp_path):
    from orca_math.learn.trainers import METHODS, DPOAdapter, KTOAdapter, SFTAdapter, TRLAdapter

    data = build_preferences(_attempts(), PreferenceOptions(borrow_negatives_from=2))
    named = {"sft": SFTAdapter, "dpo": DPOAdapter, "kto": KTOAdapter}
    for kind in METHODS:
        assert type(get_trainer(kind)) is named[kind] and isinstance(get_trainer(kind), TRLAdapter)
    # The generic adapter, built from the table row alone, trains like the named one.
    adapter = TRLAdapter("kto")
    checkpoint = adapter.train(data.kto, tmp_path / "kto", get_preset("tiny", max_steps=2, kto_beta=0.3),
                               model=tiny_model_dir)
    _assert_trained(adapter, checkpoint, tiny_model_dir)


def test_field_maps_fill_real_trl_config_fields_from_real_preset_fields(tmp_path):
    import dataclasses

    import trl

    from orca_math.learn.trainers import COMMON_FIELDS, METHODS, trl_config_args

    preset = get_preset("tiny", kto_beta=0.3, dpo_beta=0.2, kto_desirable_weight=1.25, trl_args={"save_steps": 7})
    preset_fields = {f.name for f in dataclasses.fields(preset)}
    for kind, method in METHODS.items():
        config_class = getattr(trl, method.config)
        config_fields = {f.name for f in dataclasses.fields(config_class)}
        mapped = {**COMMON_FIELDS, **method.fields}
        assert set(mapped) <= config_fields, f"{kind}: not {method.config} fields: {set(mapped) - config_fields}"
        assert set(mapped.values()) <= preset_fields
        config = config_class(**trl_config_args(kind, preset, tmp_path))
        assert config.learning_rate == 1e-3 and config.max_steps == 4 and config.save_steps == 7
    kto = trl.KTOConfig(**trl_config_args("kto", preset, tmp_path))
    assert (kto.beta, kto.desirable_weight, kto.undesirable_weight) == (0.3, 1.25, 1.0)
    assert trl.DPOConfig(**trl_config_args("dpo", preset, tmp_path)).beta == 0.2


def test_sft_refuses_a_reference_model_before_loading_anything(tmp_path):
    from orca_math.errors import ConfigError

    data = build_preferences(_attempts())
    with pytest.raises(ConfigError, match="SFT uses no reference model"):
        get_trainer("sft").train(data.sft, tmp_path, get_preset("tiny"), model=tmp_path / "absent",
                                 ref_model=tmp_path / "absent-too")


def test_dpo_accepts_an_explicit_reference_model(tiny_model_dir, tmp_path):
    data = build_preferences(_attempts())
    adapter = get_trainer("dpo")
    checkpoint = adapter.train(data.dpo, tmp_path / "dpo", get_preset("tiny", max_steps=2),
                               model=str(tiny_model_dir), ref_model=tiny_model_dir)
    _assert_trained(adapter, checkpoint, tiny_model_dir)


def test_sft_masks_prompt_tokens_from_the_loss(tiny_model_dir, tmp_path):
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = [{"question": q, "answer": a} for q, a in QUESTIONS.values()]
    dataset = sft_dataset(rows)
    trainer = SFTTrainer(
        model=str(tiny_model_dir), processing_class=tokenizer, train_dataset=dataset,
        args=SFTConfig(output_dir=str(tmp_path), completion_only_loss=True, bf16=False, report_to="none",
                       model_init_kwargs={"dtype": "float32"}),
    )
    example = trainer.train_dataset[0]
    prompt_len = len(tokenizer(dataset[0]["prompt"])["input_ids"])
    labels = example["labels"]
    assert all(label == -100 for label in labels[:prompt_len])
    assert labels[prompt_len:] == example["input_ids"][prompt_len:]  # answer + EOS are learned
    assert len(labels) > prompt_len


def test_lora_preset_trains_and_saves_merged_weights(tiny_model_dir, tmp_path):
    data = build_preferences(_attempts())
    preset = get_preset("tiny", max_steps=2, use_lora=True, lora_target_modules=("q_proj", "v_proj"))
    adapter = get_trainer("sft")
    checkpoint = adapter.train(data.sft, tmp_path / "lora", preset, model=tiny_model_dir)
    assert not (checkpoint / "adapter_config.json").exists()
    before, after = _weights(tiny_model_dir), _weights(checkpoint)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all("q_proj" in name or "v_proj" in name for name in changed)


def test_wrong_format_is_rejected_before_training(tiny_model_dir, tmp_path):
    data = build_preferences(_attempts())
    expected = "missing: chosen, rejected; found: prompt, completion, label"
    with pytest.raises(DatasetFormatError, match=expected):
        get_trainer("dpo").train(data.kto, tmp_path, get_preset("tiny"), model=tiny_model_dir)


def test_in_memory_model_and_unknown_trainer_are_errors(tiny_model_dir, tmp_path):
    data = build_preferences(_attempts())
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with pytest.raises(TypeError, match="save_pretrained"):
        get_trainer("kto").train(data.kto, tmp_path, get_preset("tiny"), model=model)
    with pytest.raises(ValueError, match="Unknown trainer 'ppo'"):
        get_trainer("ppo")


def test_custom_trainer_example_implements_the_protocol(tiny_model_dir, tmp_path):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "examples" / "custom_trainer.py"
    spec = importlib.util.spec_from_file_location("custom_trainer_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    loop = example.PlainSFTLoop()
    assert isinstance(loop, Trainer)
    rows = [{"question": q, "answer": a} for q, a in QUESTIONS.values()]
    preset = get_preset("tiny", max_steps=3)
    checkpoint = loop.train(sft_dataset(rows), tmp_path / "own", preset, model=tiny_model_dir)
    assert len(loop.losses) == 3 and all(math.isfinite(x) for x in loop.losses)
    before, after = _weights(tiny_model_dir), _weights(checkpoint)
    assert any(not torch.equal(before[name], after[name]) for name in before)
