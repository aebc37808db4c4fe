"""Reading a model's reply: the JSON object in it, and the error a reply that cannot be used raises."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from orca_math.engine.items import ItemFailedError

if TYPE_CHECKING:
    from orca_math.records import Usage


class ReplyParseError(ValueError):
    """A model reply could not be turned into the agent's output record. Retryable.

    Attributes:
        reason: what was wrong, in a few words ("no JSON object", "no final answer line", ...).
        raw_reply: the reply text.
    """

    def __init__(self, reason: str, raw_reply: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw_reply = raw_reply


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class AgentFailedError(ItemFailedError):
    """Every attempt's reply failed to parse. Carries the last reason and reply, never silently empty.

    It is an `ItemFailedError`, so a stage can let it pass: the item's failure row then says which
    agent failed and why (``reason`` is "<agent>: <why the last reply was refused>").

    Attributes:
        agent: the agent's name.
        parse_reason: why the last reply was refused, without the agent's name.
    """

    def __init__(self, agent: str, reason: str, raw_reply: str, attempts: int, usage: Usage) -> None:
        super().__init__(f"{agent}: {reason}", raw_reply=raw_reply, attempts=attempts, usage=usage)
        self.agent = agent
        self.parse_reason = reason

    def __str__(self) -> str:
        return f"{self.agent}: no usable reply after {self.attempts} attempt(s): {self.parse_reason}"


def extract_json_object(reply: str) -> dict[str, Any]:
    """Find the JSON object in a reply, tolerating code fences and text around it."""
    text = reply.strip()
    candidates = [text]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(value, dict):
            return value
        raise ReplyParseError(f"expected a JSON object, got a JSON {type(value).__name__}", reply)
    raise ReplyParseError("no JSON object in the reply", reply)


__all__ = ["AgentFailedError", "ReplyParseError", "extract_json_object"]
