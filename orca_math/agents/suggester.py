"""Suggester: ways to make a problem harder, without solving or rewriting it."""

from __future__ import annotations

from typing import Any

from orca_math.agents.base import Agent
from orca_math.records import Suggestions


class Suggester(Agent[Suggestions]):
    """Proposes several concrete ways to make a problem more complex.

    Inputs: `question`. Optional template variable `n_suggestions` (default 3).
    Output: `Suggestions` — a non-empty list of strings.
    """

    card_name = "suggester"
    output_type = Suggestions

    def normalize_output(self, data: dict[str, Any]) -> dict[str, Any]:
        suggestions = data.get("suggestions")
        if not isinstance(suggestions, list):
            return data  # the record refuses it, with its reason
        return {**data, "suggestions": [s.strip() for s in suggestions if isinstance(s, str) and s.strip()]}
