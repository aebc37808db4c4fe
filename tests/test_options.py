"""Typed options: bounds are refused with one sentence naming the field, unknown fields are refused."""

from __future__ import annotations

import dataclasses

import pytest

from orca_math.engine.costs import Budget, Price
from orca_math.errors import ConfigError, OrcaMathError
from orca_math.learn.preferences import PreferenceOptions
from orca_math.learn.presets import TrainingPreset, get_preset
from orca_math.options import UnknownOptionError
from orca_math.quality import DecontaminationOptions, DedupOptions

# (options class, field, a value outside its bounds, what the sentence says is accepted)
BAD_VALUES = [
    (TrainingPreset, "per_device_train_batch_size", 0, ">= 1"),
    (TrainingPreset, "max_steps", -2, ">= -1"),
    (TrainingPreset, "sft_learning_rate", 0.0, "> 0 (a positive number)"),
    (TrainingPreset, "lora_dropout", 1.0, "< 1"),
    (TrainingPreset, "model_dtype", "int8", "one of 'bfloat16', 'float32', 'float16' or 'auto'"),
    (TrainingPreset, "save_strategy", "sometimes", "one of 'no', 'steps', 'epoch' or 'best'"),
    (TrainingPreset, "lora_target_modules", (), "a non-empty list"),
    (TrainingPreset, "kto_beta", float("nan"), "a finite number"),
    (TrainingPreset, "bf16", "maybe", "true or false"),
    (PreferenceOptions, "positives", "both", "one of 'teacher+student', 'teacher' or 'student'"),
    (PreferenceOptions, "negatives", "all", "one of 'student' or 'none'"),
    (PreferenceOptions, "borrow_negatives_from", -1, ">= 0"),
    (PreferenceOptions, "max_pairs_per_problem", 0, ">= 1"),
    (DedupOptions, "threshold", 0.0, "> 0 (a positive number)"),
    (DedupOptions, "threshold", 1.5, "<= 1"),
    (DedupOptions, "num_perm", 8, ">= 16"),
    (DedupOptions, "shingle", 0, ">= 1"),
    (DedupOptions, "shingle_unit", "token", "one of 'char' or 'word'"),
    (DedupOptions, "field", "", "a non-empty string"),
    (DecontaminationOptions, "n", 0, ">= 1"),
    (DecontaminationOptions, "action", "remove", "one of 'flag' or 'drop'"),
    (DecontaminationOptions, "min_overlap", 0, ">= 1"),
    (DecontaminationOptions, "field", "", "a non-empty string"),
    (Price, "input_per_million", -0.5, ">= 0"),
    (Price, "output_per_million", float("inf"), "a finite number"),
    (Budget, "max_usd", 0, "> 0 (a positive number)"),
    (Budget, "max_usd", float("inf"), "a finite number"),
]

REQUIRED = {Price: {"input_per_million": 1.0, "output_per_million": 2.0}, Budget: {"max_usd": 5.0}}


@pytest.mark.parametrize(("cls", "field", "value", "accepted"), BAD_VALUES,
                         ids=[f"{c.__name__}.{f}={v!r}" for c, f, v, _ in BAD_VALUES])
def test_a_value_outside_its_bounds_is_one_sentence_naming_the_field(cls, field, value, accepted):
    with pytest.raises(ConfigError) as caught:
        cls(**{**REQUIRED.get(cls, {}), field: value})
    message = str(caught.value)
    assert message == f"{cls.__name__} option {field}={value!r}: {field} must be {accepted}."
    assert "\n" not in message and "pydantic" not in message  # one sentence, not pydantic's report
    assert isinstance(caught.value, OrcaMathError) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize("cls", [TrainingPreset, PreferenceOptions, DedupOptions, DecontaminationOptions, Price, Budget])
def test_an_unknown_field_is_refused_with_the_closest_name(cls):
    first = dataclasses.fields(cls)[0].name
    with pytest.raises(UnknownOptionError) as caught:
        cls(**{**REQUIRED.get(cls, {}), first + "s": 1})
    message = str(caught.value)
    assert message.startswith(f"{cls.__name__} got an unexpected keyword argument '{first}s' (did you mean '{first}'?)")
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ConfigError)


def test_options_are_frozen_dataclasses_that_validate_on_replace():
    preset = get_preset("tiny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        preset.max_steps = 3  # type: ignore[misc]
    assert dataclasses.replace(preset, max_steps=7).max_steps == 7
    with pytest.raises(ConfigError, match="max_steps must be >= -1"):
        dataclasses.replace(preset, max_steps=-5)
    assert dataclasses.asdict(PreferenceOptions(seed=3))["seed"] == 3


def test_values_are_read_as_their_field_types():
    # Lax reading: a list for a tuple field, a whole float or digits for an int field.
    preset = TrainingPreset(lora_target_modules=["q_proj"], max_steps="3", lora_r=8.0)  # type: ignore[arg-type]
    assert preset.lora_target_modules == ("q_proj",) and preset.max_steps == 3 and preset.lora_r == 8
    with pytest.raises(ConfigError, match=r"lora_target_modules\[1\]='': lora_target_modules\[1\] must be a non-empty string\.$"):
        TrainingPreset(lora_target_modules=("q_proj", ""))
    with pytest.raises(ConfigError, match="lora_r=2.5: lora_r must be a whole number"):
        TrainingPreset(lora_r=2.5)  # type: ignore[arg-type]


def test_positional_arguments_are_named_by_their_field():
    assert Price(2.5, 10.0).cost(1_000_000, 0) == 2.5
    with pytest.raises(ConfigError, match=r"^Price option output_per_million=-1: output_per_million must be >= 0\.$"):
        Price(1.0, -1)
    with pytest.raises(ConfigError, match="^Price needs output_per_million.$"):
        Price(1.0)  # type: ignore[call-arg]


def test_several_problems_are_one_sentence():
    with pytest.raises(ConfigError) as caught:
        DedupOptions(threshold=2.0, num_perm=1)
    assert str(caught.value) == ("DedupOptions option threshold=2.0: threshold must be <= 1; "
                                 "DedupOptions option num_perm=1: num_perm must be >= 16.")


def test_from_mapping_names_unknown_keys_and_refuses_a_non_mapping():
    with pytest.raises(UnknownOptionError, match=r"^unknown dedup option 'treshold' \(did you mean 'threshold'\?\); "
                       "the options are exact, near, threshold"):
        DedupOptions.from_mapping({"treshold": 0.9})
    with pytest.raises(ConfigError, match="decontamination options must be a mapping"):
        DecontaminationOptions.from_mapping([("n", 8)])  # type: ignore[arg-type]
    assert DecontaminationOptions.from_mapping({"n": 8}).n == 8
