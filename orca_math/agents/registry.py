"""The agent registry: every agent orca-math knows, by card name, read from the cards and open to other packages.

A shipped agent is a card (``agents/<name>.yaml``), a template (``prompts/<name>.jinja``) and a
class in ``orca_math/agents/<name>.py``, named by the card's ``class`` field: nothing else
registers it. Its dry-run hint (``estimate``) and the origin of the problems it writes (``origin``)
come from the same card.

Another package adds agents through entry points in the group ``orca_math.agents``, each naming an
agent class whose card (``card_name``) lies next to the class's module, with its template::

    # the plug-in package's pyproject.toml
    [project.entry-points."orca_math.agents"]
    checker = "my_package.checker:Checker"      # my_package/checker.yaml, my_package/checker.jinja

`AGENTS` holds them all (``{card name: agent class}``); `agent_classes()`, `agent_cards()`,
`origins()` and `typical_completion_tokens()` read from it.
"""

from __future__ import annotations

import functools
import logging
from importlib import import_module
from typing import Any

from orca_math.agents.base import Agent
from orca_math.agents.cards import SEED, AgentCard, CardError, OriginInfo, shipped_cards
from orca_math.agents.cards import typical_completion_tokens as _hints_of
from orca_math.plugins import Registry

logger = logging.getLogger(__name__)

#: The agents, by card name: each entry's factory is the agent class (``factory(model, **options)`` builds one).
AGENTS = Registry("agent", "orca_math.agents")


def _shipped_class(card: AgentCard) -> type[Agent]:
    """The class a shipped card's ``class`` names: in ``orca_math.agents.<card name>``, or ``module:Class``."""
    module, _, attribute = (card.class_name or "").rpartition(":")
    module = module or f"orca_math.agents.{card.name}"
    try:
        found = getattr(import_module(module), attribute, None)
    except ImportError as exc:
        raise CardError(f"agent card {card.path}: field 'class': cannot import {module}: {exc}") from None
    if not (isinstance(found, type) and issubclass(found, Agent)):
        raise CardError(f"agent card {card.path}: field 'class': {card.class_name!r} is not an agent class of {module}")
    return found


def _register_shipped() -> None:
    for card in shipped_cards():
        if card.class_name is None:
            raise CardError(f"agent card {card.path}: field 'class': a shipped card must name its agent class")
        AGENTS.add(card.name, _shipped_class(card), help=card.description)


_register_shipped()


def agent_classes() -> dict[str, type[Agent]]:
    """Every registered agent's class, by card name: the shipped ones first, then the plug-ins'.

    A plug-in whose entry point is not an agent class is left out with a warning, as a broken
    plug-in of any kind is; once per process, since reports read origins row by row.
    """
    classes: dict[str, type[Agent]] = {}
    for name, plugin in AGENTS.entries().items():
        if isinstance(plugin.factory, type) and issubclass(plugin.factory, Agent):
            classes[name] = plugin.factory
        elif (name, plugin.source) not in _IGNORED:
            _IGNORED.add((name, plugin.source))
            logger.warning("Ignored the agent %r from %s: it is not an orca_math.agents.Agent class.", name, plugin.source)
    return classes


#: The (name, source) of each plug-in `agent_classes` left out and warned about.
_IGNORED: set[tuple[str, Any]] = set()


def agent_cards() -> list[AgentCard]:
    """The card of every registered agent, in `agent_classes()` order."""
    return [_card_of(agent_class) for agent_class in agent_classes().values()]


@functools.cache
def _card_of(agent_class: type[Agent]) -> AgentCard:
    # Read once per class: reports ask for origins row by row.
    return agent_class.default_card()


def typical_completion_tokens(cards: list[AgentCard] | None = None) -> dict[str, int]:
    """Typical reply lengths in tokens, by agent name, from the cards' ``estimate.completion_tokens``.

    Dry runs (`orca_math.engine.estimate`) price every reply at this length unless told otherwise
    (``--completion-tokens AGENT=N``); a new agent brings its own in its card.

    Args:
        cards: the cards to read (default: every registered agent's, `agent_cards()`).
    """
    return _hints_of(cards if cards is not None else agent_cards())


def origins() -> dict[str, OriginInfo]:
    """Every origin a row can carry, by name: ``seed``, then the origin each registered agent's card declares.

    Raises:
        CardError: two cards declare one origin name with different meanings.
    """
    found: dict[str, tuple[OriginInfo, Any]] = {SEED.name: (SEED, "orca-math")}
    for card in agent_cards():
        if card.origin is None:
            continue
        known = found.get(card.origin.name)
        if known is not None and known[0] != card.origin:
            raise CardError(f"agent card {card.path}: field 'origin': {card.origin.name!r} is declared differently "
                            f"by {known[1]}")
        found.setdefault(card.origin.name, (card.origin, card.path))
    return {name: info for name, (info, _) in found.items()}


def origin_info(name: str | None) -> OriginInfo | None:
    """What an origin means (`origins()`), or None for a name no registered card declares."""
    return origins().get(name or SEED.name)


__all__ = ["AGENTS", "agent_cards", "agent_classes", "origin_info", "origins", "typical_completion_tokens"]
