"""A local Hugging Face transformers model as an autogen `ChatCompletionClient`, for small students.

Use it to sample and evaluate a student on CPU or one GPU; for throughput, serve the checkpoint
with vLLM and use its URL instead. Spec: ``load_model("hf:<folder>")``.

    client = TransformersChatCompletionClient("ckpt/m1", prompt_format="orca")
    result = await client.create([UserMessage(content="What is 2+3?", source="user")])

Prompt formats:

* ``"chat"``: the tokenizer's chat template; when the tokenizer has none, the Orca format below.
* ``"orca"``: the Orca-Math paper's ``USER: {question}\\nASSISTANT:`` text, which our SFT preset
  trains on. Sample a model trained with our presets this way. A system message, if any, is put
  before the first ``USER:`` line (the paper's format has none, so prefer sending none).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Mapping, Sequence
from pathlib import Path
from typing import Any

from autogen_core import CancellationToken
from autogen_core.models import (
    AssistantMessage,
    CreateResult,
    LLMMessage,
    ModelFamily,
    ModelInfo,
    RequestUsage,
    SystemMessage,
    UserMessage,
)

from orca_math.models.base import OwnChatClient
from orca_math.models.errors import ModelSpecError
from orca_math.models.identity import (
    ModelIdentity,
    checkpoint_fingerprint,
    local_checkpoint,
    register_identity,
)

# Must match orca_math.learn.formats.ORCA_PROMPT_TEMPLATE (models must not import the layer above).
ORCA_PROMPT_TEMPLATE = "USER: {question}\nASSISTANT:"
_ORCA_STOP = "\nUSER:"  # a model that did not learn to end would start the next turn here
_CREATE_ARGS = {"temperature", "top_p", "top_k", "max_tokens", "seed", "stop", "repetition_penalty"}
_INSTALL_HINT = "install the train extra: pip install 'orca-math[train]'"


class TransformersChatCompletionClient(OwnChatClient):
    """A `ChatCompletionClient` over a local transformers causal LM; one generation at a time.

    Args:
        model: a model folder, a ``.gguf`` file, a Hub id, or a loaded `PreTrainedModel`.
        tokenizer: a tokenizer or its folder; defaults to the model's own.
        gguf_file: the GGUF file's name inside the `model` folder (needs the `gguf` package).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
        max_new_tokens: the default completion budget; ``max_tokens`` in a call overrides it.
        prompt_format: ``"chat"`` or ``"orca"`` (see the module docstring).
        dtype: weights dtype; defaults to float32 on CPU and the checkpoint's dtype elsewhere.

    `create` reads ``temperature`` (0 means greedy), ``top_p``, ``top_k``, ``max_tokens``, ``seed``,
    ``stop`` and ``repetition_penalty`` from ``extra_create_args``; any other key is an error.
    ``json_output`` is accepted and ignored: decoding is not constrained, so `model_info` says so.
    """

    def __init__(
        self,
        model: Any,
        *,
        tokenizer: Any = None,
        gguf_file: str | None = None,
        device: str = "cpu",
        max_new_tokens: int = 512,
        prompt_format: str = "chat",
        dtype: str | None = None,
    ) -> None:
        if prompt_format not in ("chat", "orca"):
            raise ModelSpecError(f"prompt_format={prompt_format!r}: use 'chat' or 'orca'.")
        if max_new_tokens < 1:
            raise ModelSpecError(f"max_new_tokens must be >= 1, got {max_new_tokens}.")
        self._model, self._tokenizer, name = _load(model, tokenizer, gguf_file, device, dtype)
        context = getattr(self._model.config, "max_position_embeddings", None) or 4096
        super().__init__(model_info=ModelInfo(vision=False, function_calling=False, json_output=False,
                                              family=ModelFamily.UNKNOWN, structured_output=False),
                         context_tokens=context)
        self._device = device
        self.max_new_tokens = max_new_tokens
        self._use_orca = prompt_format == "orca" or not getattr(self._tokenizer, "chat_template", None)
        self._lock = threading.Lock()  # generate() is not safe to run twice at once on one model
        # Run keys and cache keys name the weights, not just the folder (models.identity).
        source = local_checkpoint(model) if isinstance(model, str | Path) else None
        register_identity(self, ModelIdentity(
            name=name, provider="hf", endpoint=f"local transformers ({device})",
            checkpoint=checkpoint_fingerprint(source) if source is not None else None,
            supports_seed=True, one_at_a_time=True,
        ))

    @property
    def prompt_format(self) -> str:
        """The format in use: ``"orca"`` or ``"chat"`` (a chat-format request without a template is orca)."""
        return "orca" if self._use_orca else "chat"

    def render(self, messages: Sequence[LLMMessage]) -> str:
        """The prompt text `messages` become, in this client's format."""
        return render_prompt(messages, self._tokenizer, orca=self._use_orca)

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Any] = (),
        tool_choice: Any = "auto",
        json_output: Any = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        """Generate one reply in a worker thread (one at a time); usage counts are real token counts."""
        if tools:
            raise ValueError("TransformersChatCompletionClient does not support tools.")
        unknown = sorted(set(extra_create_args) - _CREATE_ARGS)
        if unknown:
            raise ValueError(f"Unsupported extra_create_args {unknown}: use {sorted(_CREATE_ARGS)}.")
        prompt = self.render(messages)
        result = await asyncio.to_thread(self._generate, prompt, dict(extra_create_args))
        self.count_usage(result.usage.prompt_tokens, result.usage.completion_tokens)
        return result

    def _generate(self, prompt: str, args: dict[str, Any]) -> CreateResult:
        import torch

        stops = args.get("stop") or []
        stops = [stops] if isinstance(stops, str) else list(stops)
        if self._use_orca:
            stops.append(_ORCA_STOP)
        max_tokens = int(args.get("max_tokens") or self.max_new_tokens)
        temperature = float(args.get("temperature", 1.0))
        options: dict[str, Any] = {"max_new_tokens": max_tokens, "do_sample": temperature > 0}
        if temperature > 0:
            top_p, top_k = float(args.get("top_p", 1.0)), int(args.get("top_k", 0))
            options.update(temperature=temperature, top_p=top_p, top_k=top_k)
        if "repetition_penalty" in args:
            options["repetition_penalty"] = float(args["repetition_penalty"])
        if stops:
            options.update(stop_strings=stops, tokenizer=self._tokenizer)
        tokenizer = self._tokenizer
        # A chat template already holds the BOS token; adding it again would double it.
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=self._use_orca).to(self._device)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        with self._lock:
            if args.get("seed") is not None:
                torch.manual_seed(int(args["seed"]))
            with torch.inference_mode():
                output = self._model.generate(**inputs, pad_token_id=pad_id, **options)
        prompt_len = inputs["input_ids"].shape[1]
        new_tokens = output[0][prompt_len:]
        text = tokenizer.decode(new_tokens, skip_special_tokens=True)
        finish = "length" if len(new_tokens) >= max_tokens else "stop"
        for stop in stops:  # OpenAI semantics: the stop sequence is not part of the reply
            if stop in text:
                text, finish = text.split(stop, 1)[0], "stop"
        content = text.strip() if self._use_orca else text
        usage = RequestUsage(prompt_tokens=int(prompt_len), completion_tokens=int(len(new_tokens)))
        return CreateResult(finish_reason=finish, content=content, usage=usage, cached=False)

    async def create_stream(
        self, messages: Sequence[LLMMessage], **kwargs: Any
    ) -> AsyncGenerator[str | CreateResult, None]:
        """Not incremental: yields the whole reply once, then the `CreateResult`."""
        result = await self.create(messages, **kwargs)
        yield str(result.content)
        yield result

    def count_tokens(self, messages: Sequence[LLMMessage], **kwargs: Any) -> int:
        return len(self._tokenizer(self.render(messages), add_special_tokens=self._use_orca)["input_ids"])


def render_prompt(messages: Sequence[LLMMessage], tokenizer: Any, *, orca: bool) -> str:
    """The prompt text of `messages`: the Orca format, or `tokenizer`'s chat template.

    Shared by the ``hf:`` and ``vllm:`` clients, so a checkpoint is sampled with the same text by both.
    """
    turns = [_as_turn(message) for message in messages]
    if not orca:
        return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    system = "\n".join(t["content"] for t in turns if t["role"] == "system")
    text = system + "\n" if system else ""
    for turn in turns:
        if turn["role"] == "user":
            text += ORCA_PROMPT_TEMPLATE.format(question=turn["content"].strip())
        elif turn["role"] == "assistant":
            text += " " + turn["content"].strip() + "\n"
    return text


def _as_turn(message: LLMMessage) -> dict[str, str]:
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": message.content}
    if isinstance(message, (UserMessage, AssistantMessage)):
        content = message.content
        if not isinstance(content, str):
            if isinstance(message, AssistantMessage) or not all(isinstance(part, str) for part in content):
                raise ValueError("TransformersChatCompletionClient takes text only, not images or calls.")
            content = "\n".join(content)
        return {"role": "user" if isinstance(message, UserMessage) else "assistant", "content": content}
    raise ValueError(f"TransformersChatCompletionClient cannot send a {type(message).__name__}.")


def _load(model: Any, tokenizer: Any, gguf_file: str | None, device: str, dtype: str | None):
    try:
        import torch  # noqa: F401
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise ModelSpecError(f"The hf: model needs torch and transformers: {_INSTALL_HINT}.") from None
    if isinstance(model, (str, Path)):
        path = Path(model)
        if path.suffix == ".gguf":  # a .gguf file: transformers wants its folder and its name
            path, gguf_file = path.parent, path.name
        source = str(path) if path.exists() else str(model)  # else a Hub id
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        try:
            loaded = AutoModelForCausalLM.from_pretrained(
                source, dtype=dtype or ("float32" if device == "cpu" else "auto"), **extra
            )
            if tokenizer is None:
                tokenizer = AutoTokenizer.from_pretrained(source, **extra)
        except (OSError, ValueError) as exc:
            raise ModelSpecError(f"Could not load a transformers model from {source!r}: {exc}") from None
        name = Path(gguf_file).stem if gguf_file else path.name
    else:
        loaded, name = model, getattr(model.config, "name_or_path", "") or type(model).__name__
        if tokenizer is None:
            raise ModelSpecError("Pass tokenizer=... along with an in-memory model.")
    if isinstance(tokenizer, (str, Path)):
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer))
    loaded.to(device)
    loaded.eval()
    return loaded, tokenizer, Path(str(name)).name or str(name)
