"""Training presets: typed, closed configs that the trainer adapters turn into TRL configs.

Every field carries ``help`` and ``source`` metadata. ``source`` says where the value of the
`mistral-7b` preset comes from: ``paper`` (Orca-Math, arXiv 2402.14830), ``trl-default`` (TRL 1.16's
own default) or ``practice`` (a common choice for 7B models, not from the paper). docs/training.md
lists them.

    preset = get_preset("mistral-7b", use_lora=True, dpo_beta=0.05)
    preset = get_preset("tiny", max_steps=2)
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any


def _field(default: Any, help: str, source: str, **kwargs: Any) -> Any:
    metadata = {"help": help, "source": source}
    if isinstance(default, (list, dict, tuple)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata, **kwargs)
    return field(default=default, metadata=metadata, **kwargs)


_MISTRAL_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class TrainingPreset:
    """Hyperparameters for SFT, DPO and KTO. Unknown fields are an error (see `get_preset`)."""

    name: str = _field("custom", "Name of the preset.", "-")
    # --- shared
    bf16: bool = _field(True, "Train in bfloat16 mixed precision (needs an Ampere or newer GPU).", "practice")
    model_dtype: str = _field(
        "bfloat16", "dtype the model weights are loaded in: 'bfloat16', 'float32' or 'auto'.", "practice"
    )
    per_device_train_batch_size: int = _field(4, "Examples per device per step.", "practice")
    gradient_accumulation_steps: int = _field(
        4, "Steps summed per update (effective batch: batch size x devices x this).", "practice"
    )
    gradient_checkpointing: bool = _field(True, "Recompute activations to save memory.", "trl-default")
    max_length: int = _field(
        1024, "Longest tokenized prompt+completion; Orca-Math answers are <= 1,800 characters.", "trl-default"
    )
    max_steps: int = _field(-1, "Stop after this many updates (-1: run the epochs).", "trl-default")
    warmup_steps: float = _field(
        0.03, "Learning-rate warmup: a count of updates, or a fraction of them when below 1.", "practice"
    )
    lr_scheduler_type: str = _field("cosine", "Learning-rate schedule.", "practice")
    logging_steps: int = _field(10, "Log every N updates.", "trl-default")
    save_strategy: str = _field(
        "no", "Intermediate checkpoints: 'no', 'steps' or 'epoch'; the final one is always saved.", "practice"
    )
    seed: int = _field(42, "Random seed for data order and initialisation.", "trl-default")
    report_to: str = _field("none", "Where to log metrics: 'none', 'wandb', 'tensorboard'.", "practice")
    # --- SFT
    sft_learning_rate: float = _field(2e-5, "AdamW learning rate for SFT.", "trl-default")
    sft_epochs: float = _field(1.0, "Epochs of SFT over the data (the paper: one epoch).", "paper")
    completion_only_loss: bool = _field(True, "Loss on the answer tokens only, not the prompt.", "paper")
    # --- DPO
    dpo_learning_rate: float = _field(1e-6, "AdamW learning rate for DPO.", "trl-default")
    dpo_beta: float = _field(0.1, "DPO beta: higher keeps the model closer to the reference.", "trl-default")
    dpo_epochs: float = _field(1.0, "Epochs of DPO over the pairs.", "practice")
    # --- KTO
    kto_learning_rate: float = _field(1e-6, "AdamW learning rate for KTO.", "trl-default")
    kto_beta: float = _field(0.1, "KTO beta: higher keeps the model closer to the reference.", "trl-default")
    kto_epochs: float = _field(1.0, "Epochs of KTO over the rows.", "practice")
    kto_desirable_weight: float = _field(
        1.0, "Weight of desirable rows; use PreferenceStats.suggested_desirable_weight.", "trl-default"
    )
    kto_undesirable_weight: float = _field(
        1.0, "Weight of undesirable rows; use PreferenceStats.suggested_undesirable_weight.", "trl-default"
    )
    # --- LoRA (peft)
    use_lora: bool = _field(False, "Train LoRA adapters (peft) instead of all weights.", "practice")
    lora_r: int = _field(16, "LoRA rank.", "practice")
    lora_alpha: int = _field(32, "LoRA scaling alpha (2 x r is common).", "practice")
    lora_dropout: float = _field(0.05, "Dropout on the LoRA inputs.", "practice")
    lora_target_modules: tuple[str, ...] = _field(
        _MISTRAL_LORA_TARGETS, "Modules given adapters: Mistral's attention and MLP projections.", "practice"
    )
    # --- escape hatch
    trl_args: dict[str, Any] = _field(
        {}, "Extra fields for the TRL config (SFTConfig, DPOConfig, KTOConfig); TRL checks them.", "-"
    )

    def __post_init__(self) -> None:
        if self.model_dtype not in ("bfloat16", "float32", "float16", "auto"):
            raise ValueError(f"model_dtype={self.model_dtype!r}: use bfloat16, float32, float16 or auto.")
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "lora_r"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        object.__setattr__(self, "lora_target_modules", tuple(self.lora_target_modules))

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
    return [f.name for f in dataclasses.fields(TrainingPreset)]


def get_preset(name: str, **overrides: Any) -> TrainingPreset:
    """A named preset ("mistral-7b" or "tiny"), with fields overridden.

    Raises:
        ValueError: an unknown preset name, or an override that is not a preset field.
    """
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}: use one of {', '.join(sorted(PRESETS))}.")
    unknown = [key for key in overrides if key not in preset_fields()]
    if unknown:
        described = ", ".join(_name_with_hint(key) for key in unknown)
        raise ValueError(f"Unknown preset field {described}; see TrainingPreset for the fields.")
    return TrainingPreset(**{**PRESETS[name], **overrides})


def _name_with_hint(key: str) -> str:
    hint = difflib.get_close_matches(key, preset_fields(), n=1)
    return f"{key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
