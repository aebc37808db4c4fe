"""Agent cards: YAML files that describe an agent (role, template, sampling, output schema).

A card is validated against `CARD_SCHEMA`; a bad card raises `CardError` naming the card and field.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from orca_math.errors import ConfigError
from orca_math.records import SEED_ORIGIN
from orca_math.resources import resource_dir

CARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "role", "template", "inputs", "output_format"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        # A class of the module orca_math.agents.<name> ("Teacher"), or "module:Class" for any importable one.
        "class": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_.]*(:[A-Za-z_][A-Za-z0-9_]*)?$"},
        "description": {"type": "string"},
        "role": {"type": "string", "minLength": 1},
        "template": {"type": "string", "minLength": 1},
        "inputs": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "output_format": {"enum": ["json", "text"]},
        "format_rationale": {"type": "string"},
        "sampling": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "temperature": {"type": "number", "minimum": 0},
                "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "max_tokens": {"type": "integer", "minimum": 1},
                "seed": {"type": "integer"},
                "stop": {"type": "array", "items": {"type": "string"}},
            },
        },
        "output_schema": {"type": "object"},
        # The origin of the problems the agent writes: it labels rows, it changes no call, so it is
        # not part of the fingerprint either.
        "origin": {
            "type": "object",
            "required": ["name", "description"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                "description": {"type": "string", "minLength": 1},
                "known_answer": {"type": "boolean"},
                "edits_parent": {"type": "boolean"},
            },
        },
        # Hints for dry runs, not for the calls: they are not part of the card's fingerprint.
        "estimate": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"completion_tokens": {"type": "integer", "minimum": 1}},
        },
    },
}


class CardError(ConfigError):
    """An agent card is missing, unreadable or invalid."""


@dataclass(frozen=True)
class OriginInfo:
    """Where a problem came from: the `origin` a row carries, declared by the card of the agent that writes it.

    Attributes:
        name: the value of the rows' `origin` column (``ask_me_anything``, ``suggester_editor``).
        description: what it means, for dataset cards and reports.
        known_answer: each problem comes with its answer (`known_answer`, as Ask-Me-Anything's targets
            do): Verify checks such rows against it, so dry runs count no verifier call for them.
        edits_parent: each problem is a rewrite of its parent (`parent_id`), one per `round`: viewers
            show the word diff and reports group such rows by round (as Suggester/Editor hardening).
    """

    name: str
    description: str
    known_answer: bool = False
    edits_parent: bool = False


#: The origin of problems read from a seed file (every other origin comes from an agent card).
SEED = OriginInfo(SEED_ORIGIN, "a seed problem, as read from the seed file")


@dataclass(frozen=True)
class AgentCard:
    """A parsed, validated agent card.

    Attributes:
        name: the agent's name, also the card's file stem.
        role: the system message.
        template: the template file name, looked up next to the card, then in the shipped prompts/.
        inputs: the template variables the agent needs.
        output_format: `json` (the reply is a JSON object) or `text`.
        output_schema: an extra JSON Schema the parsed output must satisfy; None (the default) means
            the agent's output record (`Agent.output_type`) is the schema, and replies are checked once, by it.
        sampling: default sampling parameters (temperature, top_p, max_tokens, seed, stop).
        typical_completion_tokens: the card's ``estimate.completion_tokens``: a typical reply's length
            with a GPT-4-class model, for dry-run estimates (`typical_completion_tokens()`); None: not given.
        origin: the origin of the problems the agent writes (`OriginInfo`); None for agents that write none.
        class_name: the card's ``class``: a class of ``orca_math.agents.<name>``, or ``"module:Class"``.
        path: where the card was read from.
    """

    name: str
    role: str
    template: str
    inputs: tuple[str, ...]
    output_format: str
    output_schema: dict[str, Any] | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    format_rationale: str = ""
    class_name: str | None = None
    typical_completion_tokens: int | None = None
    origin: OriginInfo | None = None
    path: Path | None = None

    @property
    def fingerprint(self) -> str:
        """A short hash of everything in the card, for run keys."""
        body = yaml.safe_dump(
            {
                "name": self.name,
                "role": self.role,
                "template": self.template,
                "inputs": list(self.inputs),
                "output_format": self.output_format,
                "output_schema": self.output_schema,
                "sampling": self.sampling,
            },
            sort_keys=True,
        )
        return hashlib.sha256(body.encode()).hexdigest()[:16]


def parse_card(data: Any, *, source: str) -> AgentCard:
    """Validate a card's mapping and build an `AgentCard`. `source` names it in errors."""
    if not isinstance(data, dict):
        raise CardError(f"agent card {source}: expected a YAML mapping, got {type(data).__name__}")
    errors = sorted(jsonschema.Draft202012Validator(CARD_SCHEMA).iter_errors(data), key=lambda e: e.path)
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.absolute_path) or _missing_field(first) or "(top level)"
        raise CardError(f"agent card {source}: field '{where}': {first.message}")
    if data.get("output_schema") is not None:
        try:
            jsonschema.Draft202012Validator.check_schema(data["output_schema"])
        except jsonschema.SchemaError as exc:
            raise CardError(f"agent card {source}: field 'output_schema' is not a valid JSON Schema: {exc.message}") from None
    if (data.get("origin") or {}).get("name") == SEED_ORIGIN:
        raise CardError(f"agent card {source}: field 'origin.name': {SEED_ORIGIN!r} is the origin of seed problems; "
                        "name the origin of this agent's problems")
    return AgentCard(
        name=data["name"],
        role=data["role"].strip(),
        template=data["template"],
        inputs=tuple(data["inputs"]),
        output_format=data["output_format"],
        output_schema=data.get("output_schema"),
        sampling=dict(data.get("sampling") or {}),
        description=(data.get("description") or "").strip(),
        format_rationale=(data.get("format_rationale") or "").strip(),
        class_name=data.get("class"),
        typical_completion_tokens=(data.get("estimate") or {}).get("completion_tokens"),
        origin=OriginInfo(**data["origin"]) if data.get("origin") else None,
        path=None,
    )


def _missing_field(error: jsonschema.ValidationError) -> str | None:
    if error.validator == "required":
        # "'role' is a required property" -> role
        return error.message.split("'")[1] if "'" in error.message else None
    if error.validator == "additionalProperties":
        return error.message.split("'")[1] if "'" in error.message else None
    return None


def load_card(name_or_path: str | Path) -> AgentCard:
    """Load a card by shipped name (`"teacher"`) or by path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = resource_dir("agents") / f"{name_or_path}.yaml"
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in resource_dir("agents").glob("*.yaml")))
            raise CardError(f"no agent card named {name_or_path!r}; shipped cards are: {known}")
    if not path.exists():
        raise CardError(f"agent card {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CardError(f"agent card {path}: not valid YAML: {exc}") from None
    card = parse_card(data, source=str(path))
    object.__setattr__(card, "path", path)
    return card


def shipped_cards() -> list[AgentCard]:
    """All cards shipped with the library."""
    return [load_card(p) for p in sorted(resource_dir("agents").glob("*.yaml"))]


def typical_completion_tokens(cards: list[AgentCard] | None = None) -> dict[str, int]:
    """Typical reply lengths in tokens, by agent name, from the cards' ``estimate.completion_tokens``.

    Dry runs (`orca_math.engine.estimate`) price every reply at this length unless told otherwise
    (``--completion-tokens AGENT=N``); a new agent brings its own in its card.

    Args:
        cards: the cards to read (default: the shipped ones).
    """
    return {card.name: card.typical_completion_tokens for card in (cards if cards is not None else shipped_cards())
            if card.typical_completion_tokens is not None}
