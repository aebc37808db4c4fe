"""What samples and evaluates each checkpoint of the learning loop.

`default_sampler` picks the engine for a checkpoint (vLLM where it can run, else transformers).
`CheckpointSampler` is the loop's ``sampler_model_factory`` that a learn recipe's sampling section
means (`orca_math.recipes.LearnRecipe`): the one mapping `orca-math learn` and
``IterativeLearner(recipe=...)`` both use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from orca_math.errors import ConfigError
from orca_math.models import ModelLike

#: Checkpoint engines a learn recipe names (`sampling.sampler`, ``--sampler``).
SAMPLER_ENGINES = ("auto", "vllm", "serve", "hf")


def default_sampler(checkpoint: Path, *, max_new_tokens: int = 1024, engine: str = "auto") -> ModelLike:
    """The spec the loop samples and evaluates a checkpoint with: vLLM where it can run, else transformers.

    Args:
        checkpoint: the checkpoint folder.
        max_new_tokens: kept for compatibility (sampling passes max_tokens with each request).
        engine: "auto" (vLLM when it is installed and a GPU is present, else ``hf:``), "vllm"
            (also on CPU, with vLLM's CPU build) or "hf".

    Returns:
        ``"vllm:<checkpoint>"`` or ``"hf:<checkpoint>"``; the engine that builds it closes it when
        the step ends, so a vLLM engine frees its GPU memory before the next training starts.
    """
    if engine not in ("auto", "vllm", "hf"):
        raise ConfigError(f"sampler engine {engine!r}: use 'auto', 'vllm' or 'hf'.")
    if engine == "auto":
        engine = "vllm" if _vllm_usable() else "hf"
    return f"{engine}:{checkpoint}"


def _vllm_usable() -> bool:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover - torch comes with the train extra
        return False


class CheckpointSampler:
    """Checkpoint folder -> the model that samples and evaluates it, as a learn recipe's sampling section says.

    It returns a `ModelRef` (``hf:``, ``vllm:``, ``vllm-serve:``): in the Orca prompt format (the
    default) the spec alone, in the ``chat`` format with its load options (the tokenizer's chat
    template, the reply budget). Nothing is loaded here: each step's engine (or each Ray worker)
    builds the client where the samples are made and closes it when the step ends, so a vLLM engine
    frees its GPU before the next training; on Ray the driver binds a stand-in that names it.

    Args:
        base_model: the loop's base model; decides `batched` before any checkpoint exists.
        engine: "auto", "vllm", "serve" (`vllm serve` on a local port for the step) or "hf".
        prompt_format: None or "orca" (what the loop's SFT trains on), or "chat".
        max_tokens: the reply token limit, a load option of a chat-format ``hf:``/``vllm:`` client.
        executor: where the loop's items run (None: this process); kept for callers, since the engine
            decides where the checkpoint is loaded.

    Attributes:
        batched: whether the sampler is a vLLM one (it batches, so many samples go in flight).
        announce: called with (checkpoint, engine) before each checkpoint is loaded; None: nothing
            is said (the loop logs the choice). `orca-math learn` prints a line here.
    """

    def __init__(self, base_model: str | Path, *, engine: str = "auto", prompt_format: str | None = None,
                 max_tokens: int = 1024, executor: Any = None) -> None:
        if engine not in SAMPLER_ENGINES:
            raise ConfigError(f"sampler engine {engine!r}: use one of {', '.join(SAMPLER_ENGINES)}.")
        self.engine, self.prompt_format, self.max_tokens, self.executor = engine, prompt_format, max_tokens, executor
        self.announce: Callable[[Path, str], Any] | None = None
        self.batched = self.spec(Path(base_model)).startswith("vllm")

    def spec(self, checkpoint: Path) -> str:
        """The spec of `checkpoint` for this sampler's engine."""
        if self.engine == "serve":
            return f"vllm-serve:{checkpoint}"
        return str(default_sampler(checkpoint, engine=self.engine))

    def __call__(self, checkpoint: Path) -> Any:
        from orca_math.models import ModelRef

        chosen = self.spec(checkpoint)
        if self.announce is not None:
            self.announce(checkpoint, chosen.split(":", 1)[0])
        if self.prompt_format in (None, "orca") or not chosen.startswith(("hf:", "vllm:")):
            # The loop loads hf: and vllm: specs in the Orca format they were trained on; a served
            # checkpoint gets the server's own chat template.
            return ModelRef(chosen)
        return ModelRef(chosen, prompt_format=self.prompt_format, max_new_tokens=self.max_tokens)


__all__ = ["SAMPLER_ENGINES", "CheckpointSampler", "default_sampler"]
