"""Training presets: typed, closed configs that the trainer adapters turn into TRL configs.

`TrainingPreset` is a frozen pydantic dataclass (see `orca_math.options`): each field's type carries
its bounds, so a bad value is one `ConfigError` sentence naming the field, and an unknown field is
an error with the closest name. It is also a plain `dataclasses` dataclass, which is how
`transformers.HfArgumentParser` builds the `orca-math train` flags from it.

Every field carries ``help`` and ``source`` metadata. ``source`` says where the value of the
`mistral-7b` preset comes from: ``paper`` (Orca-Math, arXiv 2402.14830), ``trl-default`` (TRL 1.16's
own default) or ``practice`` (a common choice for 7B models, not from the paper). docs/training.md
lists them.

    preset = get_preset("mistral-7b", use_lora=True, dpo_beta=0.05)
    preset = get_preset("tiny", max_steps=2)
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import Field

from orca_math.errors import ConfigError
from orca_math.options import UnknownOptionError, field_names, name_with_hint, options_dataclass

AtLeastOne = Annotated[int, Field(ge=1)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1)]


def _field(default: Any, help: str, source: str) -> Any:
    metadata = {"help": help, "source": source}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


_MISTRAL_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@options_dataclass
class TrainingPreset:
    """Hyperparameters for SFT, DPO and KTO (see the module docstring).

    Raises:
        ConfigError: a value outside its field's bounds, or an unknown field (`UnknownOptionError`).
    """

    name: Name = _field("custom", "Name of the preset.", "-")
    # --- shared
    bf16: bool = _field(True, "Train in bfloat16 mixed precision (needs an Ampere or newer GPU).", "practice")
    model_dtype: Literal["bfloat16", "float32", "float16", "auto"] = _field(
        "bfloat16", "dtype the model weights are loaded in: 'bfloat16', 'float32', 'float16' or 'auto'.", "practice"
    )
    per_device_train_batch_size: AtLeastOne = _field(4, "Examples per device per step.", "practice")
    gradient_accumulation_steps: AtLeastOne = _field(
        4, "Steps summed per update (effective batch: batch size x devices x this).", "practice"
    )
    gradient_checkpointing: bool = _field(True, "Recompute activations to save memory.", "trl-default")
    max_length: AtLeastOne = _field(
        1024, "Longest tokenized prompt+completion; Orca-Math answers are <= 1,800 characters.", "trl-default"
    )
    max_steps: Annotated[int, Field(ge=-1)] = _field(
        -1, "Stop after this many updates (-1: run the epochs).", "trl-default"
    )
    warmup_steps: NonNegative = _field(
        0.03, "Learning-rate warmup: a count of updates, or a fraction of them when below 1.", "practice"
    )
    lr_scheduler_type: Name = _field("cosine", "Learning-rate schedule (a transformers SchedulerType).", "practice")
    logging_steps: AtLeastOne = _field(10, "Log every N updates.", "trl-default")
    save_strategy: Literal["no", "steps", "epoch", "best"] = _field(
        "no", "Intermediate checkpoints: 'no', 'steps', 'epoch' or 'best'; the final one is always saved.", "practice"
    )
    seed: Annotated[int, Field(ge=0)] = _field(42, "Random seed for data order and initialisation.", "trl-default")
    report_to: Name = _field("none", "Where to log metrics: 'none', 'wandb', 'tensorboard'.", "practice")
    # --- SFT
    sft_learning_rate: Positive = _field(2e-5, "AdamW learning rate for SFT.", "trl-default")
    sft_epochs: Positive = _field(1.0, "Epochs of SFT over the data (the paper: one epoch).", "paper")
    completion_only_loss: bool = _field(True, "Loss on the answer tokens only, not the prompt.", "paper")
    # --- DPO
    dpo_learning_rate: Positive = _field(1e-6, "AdamW learning rate for DPO.", "trl-default")
    dpo_beta: Positive = _field(0.1, "DPO beta: higher keeps the model closer to the reference.", "trl-default")
    dpo_epochs: Positive = _field(1.0, "Epochs of DPO over the pairs.", "practice")
    # --- KTO
    kto_learning_rate: Positive = _field(1e-6, "AdamW learning rate for KTO.", "trl-default")
    kto_beta: Positive = _field(0.1, "KTO beta: higher keeps the model closer to the reference.", "trl-default")
    kto_epochs: Positive = _field(1.0, "Epochs of KTO over the rows.", "practice")
    kto_desirable_weight: Positive = _field(
        1.0, "Weight of desirable rows; use PreferenceStats.suggested_desirable_weight.", "trl-default"
    )
    kto_undesirable_weight: Positive = _field(
        1.0, "Weight of undesirable rows; use PreferenceStats.suggested_undesirable_weight.", "trl-default"
    )
    # --- LoRA (peft)
    use_lora: bool = _field(False, "Train LoRA adapters (peft) instead of all weights.", "practice")
    lora_r: AtLeastOne = _field(16, "LoRA rank.", "practice")
    lora_alpha: AtLeastOne = _field(32, "LoRA scaling alpha (2 x r is common).", "practice")
    lora_dropout: Annotated[float, Field(ge=0, lt=1)] = _field(0.05, "Dropout on the LoRA inputs.", "practice")
    lora_target_modules: Annotated[tuple[Name, ...], Field(min_length=1)] = _field(
        _MISTRAL_LORA_TARGETS, "Modules given adapters: Mistral's attention and MLP projections.", "practice"
    )
    # --- escape hatch
    trl_args: dict[str, Any] = _field(
        {}, "Extra fields for the TRL config (SFTConfig, DPOConfig, KTOConfig); TRL checks them.", "-"
    )

    def describe(self) -> list[dict[str, Any]]:
        """One dict per field: name, value, help, source (for docs and `--help`)."""
        return [
            {"name": f.name, "value": getattr(self, f.name), **f.metadata} for f in dataclasses.fields(self)
        ]


PRESETS: dict[str, dict[str, Any]] = {
    # One 8-GPU node, full fine-tuning under DeepSpeed ZeRO-3 (or LoRA with use_lora=True).
    "mistral-7b": {"name": "mistral-7b"},
    # CPU smoke runs and tests: fp32, one example per step, a handful of steps, no checkpointing.
    "tiny": {
        "name": "tiny",
        "bf16": False,
        "model_dtype": "float32",
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "gradient_checkpointing": False,
        "max_length": 256,
        "max_steps": 4,
        "warmup_steps": 0,
        "lr_scheduler_type": "constant",
        "logging_steps": 1,
        "sft_learning_rate": 1e-3,
        "dpo_learning_rate": 1e-3,
        "kto_learning_rate": 1e-3,
        "lora_r": 4,
        "lora_alpha": 8,
    },
}


def preset_fields() -> list[str]:
    """The names a preset override may use."""
    return field_names(TrainingPreset)


def preset_value(field: str, raw: str) -> Any:
    """A ``FIELD=VALUE`` override's text as the field takes it, for `get_preset` to check.

    A list field (``lora_target_modules``) takes comma-separated names, a mapping (``trl_args``) and
    every other field a YAML/JSON value (``100``, ``true``, ``{"save_steps": 500}``); a text field keeps
    the text as it is. A field that is not a preset's is returned as the text (get_preset names it).
    """
    import typing

    import yaml

    kind = typing.get_type_hints(TrainingPreset).get(field)
    if kind is str or typing.get_origin(kind) is Literal:
        return raw
    if typing.get_origin(kind) is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    try:
        return yaml.safe_load(raw) if raw.strip() else raw
    except yaml.YAMLError:
        return raw


def get_preset(name: str, **overrides: Any) -> TrainingPreset:
    """A named preset ("mistral-7b" or "tiny"), with fields overridden.

    Raises:
        ConfigError: an unknown preset name, an override outside its field's bounds, or (as
            `UnknownOptionError`) an override that is not a preset field, with the closest field named.
    """
    if name not in PRESETS:
        raise ConfigError(f"Unknown preset {name!r}: use one of {', '.join(sorted(PRESETS))}.")
    unknown = [key for key in overrides if key not in preset_fields()]
    if unknown:
        described = ", ".join(name_with_hint(key, preset_fields()) for key in unknown)
        raise UnknownOptionError(f"Unknown preset field {described}; see TrainingPreset for the fields.")
    return TrainingPreset(**{**PRESETS[name], **overrides})
