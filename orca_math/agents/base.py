"""The agent base class: a card + a template + two overridable methods.

A subclass overrides at most two things:

* `build_messages(inputs)` — turn the input fields into chat messages (default: the card's role as
  the system message, the rendered template as the user message);
* `parse(reply, inputs)` — turn the model's reply text into the output record, raising
  `ReplyParseError` when it can't (default for JSON cards: parse the JSON object and validate it).

Calling the model, retrying a reply that doesn't parse, validating against the card's output
schema, counting tokens and translating client errors are the base class's job.
"""

from __future__ import annotations

import copy
import functools
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import jsonschema
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    LLMMessage,
    SystemMessage,
    UserMessage,
)
from pydantic import ValidationError

from orca_math._sync import run_sync
from orca_math.agents.cards import AgentCard, load_card
from orca_math.agents.replies import AgentFailedError, ReplyParseError, extract_json_object
from orca_math.agents.templates import PromptTemplate, load_template
from orca_math.engine.client import ManagedClient
from orca_math.errors import ConfigError
from orca_math.models import ModelLike, describe_client, resolve_model
from orca_math.models.errors import translate_error
from orca_math.records import Record, Usage, compile_validator
from orca_math.tokens import estimate_tokens

OutT = TypeVar("OutT", bound=Record)


@dataclass
class AgentResult(Generic[OutT]):
    """What one agent call produced: the output record plus the reply, attempts and token usage."""

    output: OutT
    raw_reply: str
    attempts: int
    usage: Usage
    model: str
    messages: list[LLMMessage] = field(default_factory=list)


class Agent(Generic[OutT]):
    """Base class of the Orca-Math agents.

    Subclasses set `card_name` (the shipped card to load) and `output_type` (the record class), and
    may override `build_messages` and/or `parse`. Everything else is shared.

    Args:
        model: a model spec for `load_model` ("local", "openai:gpt-4o", a URL, ...) or any
            autogen `ChatCompletionClient`.
        card: a card name, a path to a card YAML, or an `AgentCard`; defaults to `card_name`.
        template: a template file name/path or a `PromptTemplate`; defaults to the card's.
        parse_retries: how many more times to ask after a reply that doesn't parse.
        sampling: overrides of the card's default sampling parameters; a None value keeps the card's.
    """

    card_name: ClassVar[str] = ""
    output_type: ClassVar[type[Record]]
    #: Reject replies that copy the template (its placeholders or instructions) as parse failures.
    #: Set False for agents whose replies are kept whatever they say (e.g. a student under evaluation).
    rejects_template_echoes: ClassVar[bool] = True

    def __init__(
        self,
        model: ModelLike = "local",
        *,
        card: str | Path | AgentCard | None = None,
        template: str | Path | PromptTemplate | None = None,
        parse_retries: int = 2,
        sampling: Mapping[str, Any] | None = None,
    ) -> None:
        if parse_retries < 0:
            raise ConfigError("parse_retries must be 0 or more")
        self.card = card if isinstance(card, AgentCard) else load_card(card) if card else self.default_card()
        search = [self.card.path.parent] if self.card.path else []
        if isinstance(template, PromptTemplate):
            self.template = template
        else:
            self.template = load_template(str(template or self.card.template), search=search)
        undeclared = self.template.required_variables - set(self.card.inputs)
        if undeclared:
            raise ConfigError(
                f"template {self.template.name} uses {', '.join(sorted(undeclared))}, "
                f"which card {self.card.name!r} does not list in its inputs"
            )
        # The output record is the schema; a card may add its own JSON Schema on top (compiled once:
        # checking the schema itself on every reply costs milliseconds per call).
        schema = self.card.output_schema
        self._validate_output = compile_validator(schema) if schema is not None else None
        self.client: ChatCompletionClient = resolve_model(model)
        self.parse_retries = parse_retries
        self.sampling = _merge_sampling(self.card.sampling, sampling)

    # ------------------------------------------------------------------ the two overrides

    def build_messages(self, inputs: Mapping[str, Any]) -> list[LLMMessage]:
        """Turn input fields into chat messages. Override to change how the prompt is built."""
        return [
            SystemMessage(content=self.card.role),
            UserMessage(content=self.template.render(**inputs), source="user"),
        ]

    def parse(self, reply: str, inputs: Mapping[str, Any]) -> OutT:
        """Turn a reply into the output record, or raise `ReplyParseError`. Override for new formats.

        The default handles JSON cards: it extracts the JSON object and validates it against the
        card's output schema and `output_type`.
        """
        if self.card.output_format != "json":
            raise NotImplementedError(f"{type(self).__name__} must override parse() for text replies")
        return self.validate_output(extract_json_object(reply), reply)

    # ------------------------------------------------------------------ shared machinery

    @property
    def name(self) -> str:
        return self.card.name

    @classmethod
    def default_card(cls) -> AgentCard:
        """The card of `card_name`: a file ``<card_name>.yaml`` next to the class's module (a plug-in's
        card), else the shipped card of that name (``agents/<card_name>.yaml``)."""
        name, module = cls.card_name, sys.modules.get(cls.__module__)
        if name and Path(name).name == name and Path(name).suffix not in (".yaml", ".yml") and getattr(module, "__file__", None):
            beside = Path(module.__file__).with_name(f"{name}.yaml")
            if beside.is_file():
                return load_card(beside)
        return load_card(name)

    @functools.cached_property
    def origin(self) -> str:
        """The origin of the problems this agent writes: its card's ``origin``, else the one of its class's
        own card (a replacement card keeps the role's origin), else the agent's name."""
        if self.card.origin is not None:
            return self.card.origin.name
        own = self.default_card() if self.card_name else None
        return own.origin.name if own is not None and own.origin is not None else self.card.name

    @property
    def fingerprint(self) -> dict[str, str]:
        """Hashes of the card and template, for run keys and manifests."""
        return {"card": self.card.fingerprint, "template": self.template.fingerprint, "class": type(self).__qualname__}

    @classmethod
    def class_fingerprint(cls, card: str | Path | AgentCard | None = None) -> dict[str, str]:
        """The `fingerprint` an instance of this class would have, without building one (no model).

        Stages compute their run keys from this before any client exists.
        """
        loaded = card if isinstance(card, AgentCard) else load_card(card) if card else cls.default_card()
        search = [loaded.path.parent] if loaded.path else []
        template = load_template(loaded.template, search=search)
        return {"card": loaded.fingerprint, "template": template.fingerprint, "class": cls.__qualname__}

    def bound_to(self, client: ChatCompletionClient) -> Agent[OutT]:
        """A copy of this agent that calls `client`; card, template, sampling and retries are kept."""
        clone = copy.copy(self)
        clone.client = client
        return clone

    def validate_output(self, data: dict[str, Any], reply: str) -> OutT:
        """Build the output record from parsed data (and check a card's own schema, when it has one)."""
        if self._validate_output is not None:
            try:
                self._validate_output(data)
            except jsonschema.ValidationError as exc:
                where = "/".join(str(p) for p in exc.absolute_path) or "reply"
                raise ReplyParseError(f"reply does not match the output schema at {where}: {exc.message}", reply) from None
        try:
            return self.output_type.model_validate(self.normalize_output(data))  # type: ignore[return-value]
        except ValidationError as exc:
            error = exc.errors()[0]
            where = "/".join(str(p) for p in error["loc"]) or "reply"
            raise ReplyParseError(f"reply does not match the output schema ({self.output_type.__name__}) at {where}: "
                                  f"{error['msg']}", reply) from None

    def normalize_output(self, data: dict[str, Any]) -> dict[str, Any]:
        """Normalise parsed JSON before it becomes the output record (e.g. numbers to strings).

        Override when a model's replies need light fixing that the record would otherwise refuse.
        The default returns `data` unchanged.
        """
        return data

    def _check_not_echo(self, reply: str, output: Record, inputs: Mapping[str, Any]) -> None:
        """Raise `ReplyParseError` when the reply copies the template instead of answering.

        Small models fill a JSON shape with its own placeholders (`{"question": "<the new problem>"}`)
        or hand back the instructions as the new problem; such replies parse and match the schema.
        Checked on the whole reply (placeholders) and on every text field of the output.
        """
        if not self.rejects_template_echoes:
            return
        reason = self.template.echo_in(reply)
        if reason is None or not reason.startswith("it copies the placeholder"):
            # The whole reply may be mostly JSON keys and fields; instructions are judged per field.
            given = list(_texts(dict(inputs)))
            reason = next((r for text in _texts(output.model_dump()) if (r := self.template.echo_in(text, inputs=given))), None)
        if reason is not None:
            raise ReplyParseError(reason, reply)

    def check_inputs(self, inputs: Mapping[str, Any]) -> None:
        missing = [name for name in self.card.inputs if name not in inputs and name in self.template.required_variables]
        if missing:
            raise ConfigError(f"{self.name} needs input(s) {', '.join(missing)}; got {', '.join(sorted(inputs)) or 'none'}")

    def _create_args(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        args = _merge_sampling(self.sampling, overrides)
        if not isinstance(self.client, ManagedClient) and not getattr(self.client, "reads_orca_math_args", False):
            # Cache and accounting hints (orca_math_sample, orca_math_label) are for orca-math's
            # ManagedClient; a bare client would send them to the server.
            args = {k: v for k, v in args.items() if not k.startswith("orca_math_")}
        return args

    def _json_output_mode(self) -> bool | type[Record] | None:
        """Structured output with the record's schema where the client supports it, else JSON mode."""
        if self.card.output_format != "json":
            return None
        if _model_info_flag(self.client, "structured_output"):
            return self.output_type
        return True if _model_info_flag(self.client, "json_output") else None

    async def _reject(self, messages: list[LLMMessage], json_output: Any, create_args: dict[str, Any]) -> None:
        """Tell a client with a cache (`ManagedClient.reject_reply`) that this reply was unusable.

        Otherwise the cache would serve the same reply to the same request on every rerun, and the
        item could never succeed.
        """
        reject = getattr(self.client, "reject_reply", None)
        if callable(reject):
            await reject(messages, json_output=json_output, extra_create_args=create_args)

    async def call(self, *, sampling: Mapping[str, Any] | None = None, **inputs: Any) -> AgentResult[OutT]:
        """Run the agent once and return the output with its reply, attempts and usage.

        Raises:
            AgentFailedError: no reply parsed within `1 + parse_retries` attempts.
            ModelError: the model could not be reached or refused the request.
        """
        self.check_inputs(inputs)
        messages = self.build_messages(inputs)
        create_args = self._create_args(sampling or {})
        json_output = self._json_output_mode()
        usage = Usage()
        reason, reply = "", ""
        attempts = 0
        for attempt in range(1 + self.parse_retries):
            attempts = attempt + 1
            try:
                result = await self.client.create(messages, json_output=json_output, extra_create_args=create_args)
            except Exception as exc:
                # A ManagedClient's errors are translated already (once, where they happen); a bare
                # client's are translated here, so users still get one sentence, not an SDK traceback.
                if isinstance(self.client, ManagedClient):
                    raise
                translated = translate_error(exc, where=describe_client(self.client))
                if translated is exc:
                    raise
                raise translated from None
            reply = result.content if isinstance(result.content, str) else json.dumps([c.model_dump() for c in result.content])
            usage = usage + _usage_of(result, messages, reply)
            try:
                output = self.parse(reply, inputs)
                self._check_not_echo(reply, output, inputs)
            except ReplyParseError as exc:
                reason = exc.reason
                await self._reject(messages, json_output, create_args)
                # Tell the model what was wrong: re-asking the same prompt at temperature 0 (or through a
                # cache) would only return the same unusable reply.
                messages = [
                    *messages,
                    AssistantMessage(content=reply or "(empty reply)", source=self.name),
                    UserMessage(content=f"Your reply could not be used: {reason}. Reply again, following the requested format exactly.", source="user"),
                ]
                continue
            return AgentResult(output=output, raw_reply=reply, attempts=attempts, usage=usage, model=describe_client(self.client, with_url=False), messages=messages)
        raise AgentFailedError(self.name, reason, reply, attempts, usage)

    async def run(self, **inputs: Any) -> OutT:
        """Run the agent and return its validated output record."""
        return (await self.call(**inputs)).output

    def run_sync(self, **inputs: Any) -> OutT:
        """Synchronous `run`; also works inside a running event loop such as Jupyter's."""
        return run_sync(self.run(**inputs))

    def as_chat_agent(self, name: str | None = None, description: str | None = None):
        """Deprecated: use `orca_math.agents.chat.as_chat_agent(agent)`."""
        import warnings

        warnings.warn("Agent.as_chat_agent() is deprecated and goes in the next release; use "
                      "orca_math.agents.chat.as_chat_agent(agent)", DeprecationWarning, stacklevel=2)
        from orca_math.agents.chat import as_chat_agent

        return as_chat_agent(self, name=name, description=description)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(card={self.card.name!r}, model={describe_client(self.client, with_url=False)!r})"


def _merge_sampling(defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """`defaults` updated by `overrides`, where an override of None means "not set", never "unset".

    A caller passing `temperature=None` through means "use the card's"; letting the None win would
    send no temperature at all, and the server would sample at its own default (1.0 on OpenAI).
    """
    merged = {k: v for k, v in defaults.items() if v is not None}
    merged.update((k, v) for k, v in (overrides or {}).items() if v is not None)
    return merged


def _texts(value: Any) -> Iterator[str]:
    """Every string inside nested dicts, lists and tuples."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)


def _model_info_flag(client: ChatCompletionClient, flag: str) -> bool:
    try:
        return bool(client.model_info.get(flag, False))
    except Exception:
        return False


def _usage_of(result: Any, messages: list[LLMMessage], reply: str) -> Usage:
    cached = bool(getattr(result, "cached", False))
    usage = getattr(result, "usage", None)
    prompt, completion = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
    estimated = False
    if not prompt and not completion and not cached:
        prompt = estimate_tokens("\n".join(str(m.content) for m in messages))
        completion = estimate_tokens(reply)
        estimated = True
    return Usage(prompt_tokens=prompt, completion_tokens=completion, calls=1, cached_calls=int(cached), estimated=estimated,
                 cached_prompt_tokens=prompt if cached else 0, cached_completion_tokens=completion if cached else 0)


async def call_agent(agent: Agent, **inputs: Any) -> AgentResult:
    """`agent.call(**inputs)`. Kept for stages written against earlier releases: `AgentFailedError` is an
    `ItemFailedError` now, so a stage can simply await `agent.call(...)`."""
    return await agent.call(**inputs)
