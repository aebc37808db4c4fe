"""Trainer adapters: SFT, DPO and KTO on TRL, behind one small protocol and one table.

`METHODS` maps each method to its TRL config and trainer classes and to the field map that turns
`TrainingPreset` fields into TRL config fields; `TRLAdapter` trains any row of it. A trainer takes
a TRL-format dataset (see `orca_math.learn.formats`), a model folder and a `TrainingPreset`,
trains, saves the model and tokenizer to `output_dir` and returns that path.
Write your own by implementing `Trainer` (see examples/custom_trainer.py); nothing here imports
the generation code.

    checkpoint = get_trainer("kto").train(data.kto, "ckpt/m2", get_preset("mistral-7b"), model="ckpt/m1")
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import datasets

from orca_math.errors import ConfigError
from orca_math.learn.formats import REQUIRED_COLUMNS, orca_chat_template, validate_format
from orca_math.learn.presets import TrainingPreset

logger = logging.getLogger(__name__)


@runtime_checkable
class Trainer(Protocol):
    """What the Orca-Math loop needs from a trainer."""

    def train(
        self,
        dataset: datasets.Dataset,
        output_dir: str | Path,
        preset: TrainingPreset,
        *,
        model: str | Path,
        ref_model: str | Path | None = None,
    ) -> Path:
        """Train `model` on `dataset`, save model and tokenizer in `output_dir`, return that path."""
        ...


@dataclass(frozen=True)
class TRLMethod:
    """One row of `METHODS`: which TRL classes train a method, and how a preset fills its config.

    Attributes:
        config: the TRL config class's name in `trl` (imported when a trainer runs, never before).
        trainer: the TRL trainer class's name in `trl`.
        fields: TRL config field -> `TrainingPreset` field, on top of `COMMON_FIELDS`.
        reference: hook turning ``ref_model`` (a path or None) and the preset into the trainer's
            keyword arguments; it refuses a reference the method has no use for.
        prepare: hook given the dataset and the built TRL config, returning the rows to train on.
    """

    config: str
    trainer: str
    fields: Mapping[str, str]
    reference: Callable[[str | Path | None, TrainingPreset], dict[str, Any]]
    prepare: Callable[[datasets.Dataset, Any], datasets.Dataset] = lambda dataset, config: dataset


def _no_reference(ref_model: str | Path | None, preset: TrainingPreset) -> dict[str, Any]:
    # SFTTrainer has no ref_model argument; a reference passed by mistake must not be dropped silently.
    if ref_model is not None:
        raise ConfigError("SFT uses no reference model; leave ref_model out.")
    return {}


def _reference(ref_model: str | Path | None, preset: TrainingPreset) -> dict[str, Any]:
    # None lets TRL build a frozen copy from the model's path (with LoRA: the adapter switched off).
    return {"ref_model": None if ref_model is None else _load_reference(ref_model, preset)}


def _shuffle_with_seed(dataset: datasets.Dataset, config: Any) -> datasets.Dataset:
    # TRL's KTO reads rows in order (its KL estimate pairs neighbours in a batch), and
    # `build_preferences` writes each problem's rows together.
    return dataset.shuffle(seed=config.seed)


# Preset fields every method passes to its TRL config under the same meaning.
COMMON_FIELDS: dict[str, str] = {
    "per_device_train_batch_size": "per_device_train_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "bf16": "bf16",
    "max_steps": "max_steps",
    "max_length": "max_length",
    "warmup_steps": "warmup_steps",
    "lr_scheduler_type": "lr_scheduler_type",
    "logging_steps": "logging_steps",
    "save_strategy": "save_strategy",
    "seed": "seed",
    "report_to": "report_to",
}

METHODS: dict[str, TRLMethod] = {
    # Supervised fine-tuning; loss on the completion only (the paper's recipe).
    "sft": TRLMethod(
        "SFTConfig", "SFTTrainer",
        {"learning_rate": "sft_learning_rate", "num_train_epochs": "sft_epochs",
         "completion_only_loss": "completion_only_loss"},
        reference=_no_reference,
    ),
    # Direct Preference Optimization on prompt/chosen/rejected pairs.
    "dpo": TRLMethod(
        "DPOConfig", "DPOTrainer",
        {"learning_rate": "dpo_learning_rate", "num_train_epochs": "dpo_epochs", "beta": "dpo_beta"},
        reference=_reference,
    ),
    # Kahneman-Tversky Optimization on prompt/completion/label rows.
    "kto": TRLMethod(
        "KTOConfig", "KTOTrainer",
        {"learning_rate": "kto_learning_rate", "num_train_epochs": "kto_epochs", "beta": "kto_beta",
         "desirable_weight": "kto_desirable_weight", "undesirable_weight": "kto_undesirable_weight"},
        reference=_reference, prepare=_shuffle_with_seed,
    ),
}


class TRLAdapter:
    """A `Trainer` for any method of `METHODS`: check the data, build the TRL config, train, save.

    The reference model of DPO and KTO is `ref_model` when given, else a frozen copy loaded from
    `model`'s folder (with LoRA: the base model with the adapter switched off). KTO rows are
    shuffled with the preset's seed first.

    Args:
        kind: a key of `METHODS`; the named subclasses (`SFTAdapter`, ...) set it.

    Attributes:
        log_history: the TRL trainer's log entries (loss, learning rate, ...) from the last `train`.
    """

    kind: str = ""

    def __init__(self, kind: str | None = None) -> None:
        kind = kind or self.kind
        if kind not in METHODS:
            raise ConfigError(f"Unknown trainer {kind!r}: use one of {', '.join(METHODS)}.")
        self.kind = kind
        self.log_history: list[dict[str, Any]] = []

    def train(
        self,
        dataset: datasets.Dataset,
        output_dir: str | Path,
        preset: TrainingPreset,
        *,
        model: str | Path,
        ref_model: str | Path | None = None,
    ) -> Path:
        """Train with TRL (see `Trainer.train`).

        Raises:
            DatasetFormatError: the dataset is not in this trainer's TRL format.
            TypeError: `model` is not a path or Hub id (save an in-memory model with `save_pretrained` first).
            ConfigError: a reference model for SFT.
        """
        import trl
        from transformers import AutoTokenizer

        method = METHODS[self.kind]
        if not isinstance(model, (str, Path)):
            raise TypeError(
                f"model must be a saved model folder or Hub id, got {type(model).__name__}; "
                "call model.save_pretrained(folder) first (DPO/KTO load their reference model from it)."
            )
        validate_format(dataset, self.kind)  # type: ignore[arg-type]
        reference = method.reference(ref_model, preset)
        dataset = _only_format_columns(dataset, self.kind)
        orca_text = isinstance(dataset[0][dataset.column_names[0]], str)
        output_dir = Path(output_dir)
        tokenizer = AutoTokenizer.from_pretrained(str(model))
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        config = getattr(trl, method.config)(**trl_config_args(self.kind, preset, output_dir))
        trainer = getattr(trl, method.trainer)(
            model=str(model), args=config, train_dataset=method.prepare(dataset, config),
            processing_class=tokenizer, peft_config=_lora_config(preset), **reference,
        )
        trainer.train()
        self.log_history = list(trainer.state.log_history)
        _check_finite(self.log_history, self.kind)
        if orca_text:
            # The model learned the Orca text format: record it, so chat servers (vLLM) and `hf:` render it.
            tokenizer.chat_template = orca_chat_template(tokenizer)
        _save(trainer, tokenizer, output_dir, merge_lora=preset.use_lora)
        return output_dir


class SFTAdapter(TRLAdapter):
    """Supervised fine-tuning with `trl.SFTTrainer` (`METHODS["sft"]`); loss on the completion only."""

    kind = "sft"


class DPOAdapter(TRLAdapter):
    """Direct Preference Optimization with `trl.DPOTrainer` (`METHODS["dpo"]`) on prompt/chosen/rejected."""

    kind = "dpo"


class KTOAdapter(TRLAdapter):
    """Kahneman-Tversky Optimization with `trl.KTOTrainer` (`METHODS["kto"]`) on prompt/completion/label."""

    kind = "kto"


_NAMED: dict[str, type[TRLAdapter]] = {cls.kind: cls for cls in (SFTAdapter, DPOAdapter, KTOAdapter)}


def get_trainer(kind: str) -> Trainer:
    """A new adapter for a method of `METHODS`: "sft", "dpo" or "kto".

    Raises:
        ConfigError: an unknown method.
    """
    return _NAMED[kind]() if kind in _NAMED else TRLAdapter(kind)


def trl_config_args(kind: str, preset: TrainingPreset, output_dir: str | Path) -> dict[str, Any]:
    """The keyword arguments of `kind`'s TRL config: the field maps, then the preset's `trl_args`."""
    fields = {**COMMON_FIELDS, **METHODS[kind].fields}
    return {
        "output_dir": str(output_dir),
        **{trl_name: getattr(preset, preset_name) for trl_name, preset_name in fields.items()},
        _checkpointing_field(): preset.gradient_checkpointing,
        "model_init_kwargs": {"dtype": preset.model_dtype},
        **preset.trl_args,
    }


def _checkpointing_field() -> str:
    # transformers 5 renamed `gradient_checkpointing` to `activation_checkpointing` (the old name warns).
    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def _only_format_columns(dataset: datasets.Dataset, kind: str) -> datasets.Dataset:
    # Provenance columns such as problem_id are ours, not TRL's; keep only what the trainer reads.
    wanted = REQUIRED_COLUMNS[kind] if kind != "sft" or "prompt" in dataset.column_names else None
    if wanted is None:
        wanted = ("messages",) if "messages" in dataset.column_names else ("text",)
    return dataset.select_columns(list(wanted))


def _load_reference(ref_model: str | Path, preset: TrainingPreset):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(ref_model), dtype=preset.model_dtype)


def _lora_config(preset: TrainingPreset):
    if not preset.use_lora:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=preset.lora_r, lora_alpha=preset.lora_alpha, lora_dropout=preset.lora_dropout,
        target_modules=list(preset.lora_target_modules), task_type="CAUSAL_LM",
    )


def _check_finite(log_history: list[dict[str, Any]], kind: str) -> None:
    losses = [entry["loss"] for entry in log_history if "loss" in entry]
    if any(not math.isfinite(loss) for loss in losses):
        raise FloatingPointError(f"{kind.upper()} training diverged: a logged loss is not finite ({losses}).")


def _save(trainer: Any, tokenizer: Any, output_dir: Path, *, merge_lora: bool) -> None:
    sharded = getattr(trainer, "is_deepspeed_enabled", False) or getattr(trainer, "is_fsdp_enabled", False)
    if merge_lora and sharded:
        # Merging needs whole weights; under ZeRO/FSDP they are split across ranks. Save the adapter.
        logger.warning("LoRA under DeepSpeed/FSDP: %s holds the adapter, not merged weights.", output_dir)
        merge_lora = False
    if merge_lora:
        # Merged weights serve directly with vLLM or `hf:`, like a full fine-tune's.
        if trainer.accelerator.is_main_process:
            merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
            merged.save_pretrained(str(output_dir))
        trainer.accelerator.wait_for_everyone()
    else:
        trainer.save_model(str(output_dir))
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(str(output_dir))
