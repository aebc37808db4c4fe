"""Helpers for the trainer and transformers-client tests: a tiny random Mistral with a real tokenizer."""

from __future__ import annotations

import functools
from pathlib import Path


@functools.cache
def bundled_tokenizer():
    """The SmolLM2 tokenizer (49,152 tokens) read from the bundled GGUF; loaded once per session."""
    from transformers import AutoTokenizer

    from orca_math.models.local import bundled_gguf_path

    gguf = bundled_gguf_path()
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def save_tiny_mistral(folder: Path) -> Path:
    """Save a randomly initialised 2-layer Mistral (hidden size 64) and the tokenizer to `folder`."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    tokenizer = bundled_tokenizer()
    torch.manual_seed(0)
    config = MistralConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
    )
    MistralForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
