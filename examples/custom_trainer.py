"""Bring your own training loop: a plain PyTorch SFT loop that implements orca-math's `Trainer` protocol.

Any object with this `train` method can stand in for the TRL adapters in the Orca-Math loop:

    def train(self, dataset, output_dir, preset, *, model, ref_model=None) -> Path

Run it on a tiny random model (no download, a few seconds on CPU):

    python examples/custom_trainer.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import datasets
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from orca_math.learn import Trainer, TrainingPreset, get_preset, sft_dataset, validate_format


class PlainSFTLoop:
    """Supervised fine-tuning in a few lines of PyTorch: AdamW, loss on completion tokens only.

    Uses the preset's `sft_learning_rate`, `per_device_train_batch_size`, `max_steps` (or
    `sft_epochs` when `max_steps` is -1) and `max_length`; runs on one device, in float32.
    """

    def __init__(self) -> None:
        self.losses: list[float] = []

    def train(
        self,
        dataset: datasets.Dataset,
        output_dir: str | Path,
        preset: TrainingPreset,
        *,
        model: str | Path,
        ref_model: str | Path | None = None,
    ) -> Path:
        if ref_model is not None:
            raise ValueError("PlainSFTLoop is supervised fine-tuning: it takes no reference model.")
        validate_format(dataset, "sft")
        torch.manual_seed(preset.seed)
        tokenizer = AutoTokenizer.from_pretrained(str(model))
        network = AutoModelForCausalLM.from_pretrained(str(model), dtype=torch.float32)
        examples = [self._encode(tokenizer, r["prompt"], r["completion"], preset.max_length) for r in dataset]
        batch_size = preset.per_device_train_batch_size
        steps_per_epoch = -(-len(examples) // batch_size)  # ceiling division
        steps = preset.max_steps if preset.max_steps > 0 else int(preset.sft_epochs * steps_per_epoch)
        optimizer = torch.optim.AdamW(network.parameters(), lr=preset.sft_learning_rate)
        network.train()
        for step in range(steps):
            start = (step * batch_size) % len(examples)
            chunk = [examples[(start + i) % len(examples)] for i in range(batch_size)]
            batch = self._collate(chunk, tokenizer)
            loss = network(**batch).loss  # transformers shifts labels and ignores -100
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            self.losses.append(loss.item())
        output_dir = Path(output_dir)
        network.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
        return output_dir

    @staticmethod
    def _encode(tokenizer, prompt: str, completion: str, max_length: int) -> dict[str, list[int]]:
        # Our prompts end on a token boundary ("...ASSISTANT:"), so the prompt's tokens are a prefix.
        prompt_ids = tokenizer(prompt)["input_ids"]
        full_ids = tokenizer(prompt + completion)["input_ids"] + [tokenizer.eos_token_id]
        labels = [-100] * len(prompt_ids) + full_ids[len(prompt_ids):]
        return {"input_ids": full_ids[:max_length], "labels": labels[:max_length]}

    @staticmethod
    def _collate(examples: list[dict[str, list[int]]], tokenizer) -> dict[str, torch.Tensor]:
        width = max(len(e["input_ids"]) for e in examples)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

        def padded(values: list[int], fill: int) -> list[int]:
            return values + [fill] * (width - len(values))

        return {
            "input_ids": torch.tensor([padded(e["input_ids"], pad_id) for e in examples]),
            "attention_mask": torch.tensor([padded([1] * len(e["input_ids"]), 0) for e in examples]),
            "labels": torch.tensor([padded(e["labels"], -100) for e in examples]),
        }


def build_tiny_model(folder: Path) -> Path:
    """A random 2-layer Mistral with the bundled SmolLM2 tokenizer, saved to `folder` (no download)."""
    from transformers import MistralConfig, MistralForCausalLM

    from orca_math.models.local import bundled_gguf_path

    gguf = bundled_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = MistralConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=len(tokenizer),
    )
    MistralForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def main() -> None:
    rows = [
        {"question": "Tom has 3 apples and buys 2 more. How many?", "answer": "3 + 2 = 5. Final answer: 5"},
        {"question": "A box holds 4 pens. How many in 3 boxes?", "answer": "4 x 3 = 12. Final answer: 12"},
    ]
    loop = PlainSFTLoop()
    assert isinstance(loop, Trainer)  # the protocol is runtime-checkable
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(Path(tmp) / "tiny")
        preset = get_preset("tiny", max_steps=5)
        checkpoint = loop.train(sft_dataset(rows), Path(tmp) / "out", preset, model=model)
        print(f"trained {len(loop.losses)} steps, losses {[round(x, 3) for x in loop.losses]}")
        print(f"saved to {checkpoint} (removed on exit)")


if __name__ == "__main__":
    main()
