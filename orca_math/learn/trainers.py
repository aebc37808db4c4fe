"""Trainer adapters: SFT, DPO and KTO on TRL, behind one small protocol.

A trainer takes a TRL-format dataset (see `orca_math.learn.formats`), a model folder and a
`TrainingPreset`, trains, saves the model and tokenizer to `output_dir` and returns that path.
Write your own by implementing `Trainer` (see examples/custom_trainer.py); nothing here imports
the generation code.

    checkpoint = get_trainer("kto").train(data.kto, "ckpt/m2", get_preset("mistral-7b"), model="ckpt/m1")
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import datasets

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


class _TRLAdapter:
    """Shared plumbing: check the data, load the tokenizer, build the TRL config, train, save.

    Subclasses set `kind` and implement `_config` and `_trainer`.

    Attributes:
        log_history: the TRL trainer's log entries (loss, learning rate, ...) from the last `train`.
    """

    kind: str = ""

    def __init__(self) -> None:
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
        """
        from transformers import AutoTokenizer

        if not isinstance(model, (str, Path)):
            raise TypeError(
                f"model must be a saved model folder or Hub id, got {type(model).__name__}; "
                "call model.save_pretrained(folder) first (DPO/KTO load their reference model from it)."
            )
        validate_format(dataset, self.kind)  # type: ignore[arg-type]
        dataset = _only_format_columns(dataset, self.kind)
        orca_text = isinstance(dataset[0][dataset.column_names[0]], str)
        output_dir = Path(output_dir)
        tokenizer = AutoTokenizer.from_pretrained(str(model))
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        args = {**_common_args(preset, output_dir), **self._config(preset), **preset.trl_args}
        reference = _load_reference(ref_model, preset) if ref_model is not None else None
        trainer = self._trainer(
            model=str(model), ref_model=reference, args=args, dataset=dataset, tokenizer=tokenizer,
            peft_config=_lora_config(preset),
        )
        trainer.train()
        self.log_history = list(trainer.state.log_history)
        _check_finite(self.log_history, self.kind)
        if orca_text:
            # The model learned the Orca text format: record it, so chat servers (vLLM) and `hf:` render it.
            tokenizer.chat_template = orca_chat_template(tokenizer)
        _save(trainer, tokenizer, output_dir, merge_lora=preset.use_lora)
        return output_dir

    def _config(self, preset: TrainingPreset) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _trainer(self, **parts: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class SFTAdapter(_TRLAdapter):
    """Supervised fine-tuning with `trl.SFTTrainer`; loss on the completion only (the paper's recipe)."""

    kind = "sft"

    def _config(self, preset: TrainingPreset) -> dict[str, Any]:
        return {
            "learning_rate": preset.sft_learning_rate,
            "num_train_epochs": preset.sft_epochs,
            "completion_only_loss": preset.completion_only_loss,
            "max_length": preset.max_length,
        }

    def _trainer(self, *, model, ref_model, args, dataset, tokenizer, peft_config):
        from trl import SFTConfig, SFTTrainer

        if ref_model is not None:
            raise ValueError("SFT uses no reference model; leave ref_model out.")
        return SFTTrainer(
            model=model, args=SFTConfig(**args), train_dataset=dataset, processing_class=tokenizer,
            peft_config=peft_config,
        )


class DPOAdapter(_TRLAdapter):
    """Direct Preference Optimization with `trl.DPOTrainer` on prompt/chosen/rejected pairs.

    The reference model is `ref_model` when given, else a frozen copy loaded from `model`'s folder
    (with LoRA: the base model with the adapter switched off).
    """

    kind = "dpo"

    def _config(self, preset: TrainingPreset) -> dict[str, Any]:
        return {
            "learning_rate": preset.dpo_learning_rate,
            "num_train_epochs": preset.dpo_epochs,
            "beta": preset.dpo_beta,
            "max_length": preset.max_length,
        }

    def _trainer(self, *, model, ref_model, args, dataset, tokenizer, peft_config):
        from trl import DPOConfig, DPOTrainer

        return DPOTrainer(
            model=model, ref_model=ref_model, args=DPOConfig(**args), train_dataset=dataset,
            processing_class=tokenizer, peft_config=peft_config,
        )


class KTOAdapter(_TRLAdapter):
    """Kahneman-Tversky Optimization with `trl.KTOTrainer` on prompt/completion/label rows.

    Rows are shuffled with the preset's seed first: TRL's KTO reads them in order (its KL estimate
    pairs neighbours in a batch), and `build_preferences` writes each problem's rows together.
    """

    kind = "kto"

    def _config(self, preset: TrainingPreset) -> dict[str, Any]:
        return {
            "learning_rate": preset.kto_learning_rate,
            "num_train_epochs": preset.kto_epochs,
            "beta": preset.kto_beta,
            "desirable_weight": preset.kto_desirable_weight,
            "undesirable_weight": preset.kto_undesirable_weight,
            "max_length": preset.max_length,
        }

    def _trainer(self, *, model, ref_model, args, dataset, tokenizer, peft_config):
        from trl import KTOConfig, KTOTrainer

        config = KTOConfig(**args)
        return KTOTrainer(
            model=model, ref_model=ref_model, args=config, train_dataset=dataset.shuffle(seed=config.seed),
            processing_class=tokenizer, peft_config=peft_config,
        )


_TRAINERS: dict[str, type[_TRLAdapter]] = {"sft": SFTAdapter, "dpo": DPOAdapter, "kto": KTOAdapter}


def get_trainer(kind: str) -> Trainer:
    """A new adapter for "sft", "dpo" or "kto"."""
    if kind not in _TRAINERS:
        raise ValueError(f"Unknown trainer {kind!r}: use one of {', '.join(_TRAINERS)}.")
    return _TRAINERS[kind]()


def _common_args(preset: TrainingPreset, output_dir: Path) -> dict[str, Any]:
    return {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": preset.per_device_train_batch_size,
        "gradient_accumulation_steps": preset.gradient_accumulation_steps,
        _checkpointing_field(): preset.gradient_checkpointing,
        "bf16": preset.bf16,
        "max_steps": preset.max_steps,
        "warmup_steps": preset.warmup_steps,
        "lr_scheduler_type": preset.lr_scheduler_type,
        "logging_steps": preset.logging_steps,
        "save_strategy": preset.save_strategy,
        "seed": preset.seed,
        "report_to": preset.report_to,
        "model_init_kwargs": {"dtype": preset.model_dtype},
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
