"""Editor: rewrites a problem by applying the Suggester's suggestions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orca_math.agents.base import Agent
from orca_math.records import EditedProblem


class Editor(Agent[EditedProblem]):
    """Writes one harder, self-contained, solvable problem from a problem and suggestions.

    Inputs: `question`, `suggestions` (a list of strings, or a `Suggestions` record).
    Output: `EditedProblem(question)`.
    """

    card_name = "editor"
    output_type = EditedProblem

    def build_messages(self, inputs: Mapping[str, Any]):
        suggestions = inputs["suggestions"]
        if hasattr(suggestions, "suggestions"):
            suggestions = suggestions.suggestions
        if isinstance(suggestions, str):
            suggestions = [suggestions]
        return super().build_messages({**inputs, "suggestions": list(suggestions)})

    def normalize_output(self, data: dict[str, Any]) -> dict[str, Any]:
        if isinstance(data.get("question"), str):
            return {**data, "question": data["question"].strip()}
        return data  # the record refuses anything but text, with its reason
