"""An orca-math agent as an autogen-agentchat chat agent, so it can join a team.

Inputs are taken from the conversation: for each input the agent needs, the newest message whose
JSON object has that key supplies it (an Editor finds `suggestions` in the Suggester's message, a
Suggester in round two finds the Editor's `question`); an input still missing falls back to the
team's task, the first message. The reply is the output record as JSON, so the next agent can
read it the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from autogen_agentchat.agents import BaseChatAgent
from autogen_agentchat.base import Response
from autogen_agentchat.messages import BaseChatMessage, TextMessage
from autogen_core import CancellationToken

from orca_math.agents.replies import AgentFailedError, extract_json_object

if TYPE_CHECKING:
    from orca_math.agents.base import Agent


def as_chat_agent(agent: Agent, name: str | None = None, description: str | None = None) -> OrcaChatAgent:
    """`agent` as an autogen-agentchat chat agent, to drop into a team (e.g. `RoundRobinGroupChat`).

    Args:
        agent: any orca-math agent.
        name: the chat agent's name (default: the agent's card name).
        description: what the team's selector reads about it (default: the card's description).
    """
    return OrcaChatAgent(agent, name=name, description=description)


class OrcaChatAgent(BaseChatAgent):
    """Wraps an `Agent` for autogen-agentchat teams (`RoundRobinGroupChat`, `SelectorGroupChat`, ...)."""

    def __init__(self, agent: Agent, *, name: str | None = None, description: str | None = None) -> None:
        super().__init__(name or agent.name, description or agent.card.description or agent.card.role)
        self.agent = agent
        self._history: list[BaseChatMessage] = []

    @property
    def produced_message_types(self) -> Sequence[type[BaseChatMessage]]:
        return (TextMessage,)

    def inputs_from_history(self, history: Sequence[BaseChatMessage]) -> dict[str, Any]:
        """Find each of the agent's inputs in the conversation (newest first), else use the task."""
        parsed: list[dict[str, Any]] = []
        for message in reversed(history):
            try:
                parsed.append(extract_json_object(message.to_text()))
            except ValueError:
                parsed.append({})
        inputs: dict[str, Any] = {}
        for name in self.agent.card.inputs:
            for data in parsed:
                if name in data:
                    inputs[name] = data[name]
                    break
        task = history[0].to_text() if history else ""
        for name in self.agent.card.inputs:
            inputs.setdefault(name, task)
            break  # only the first input (the problem) may come from the task
        return inputs

    async def on_messages(self, messages: Sequence[BaseChatMessage], cancellation_token: CancellationToken) -> Response:
        self._history.extend(messages)
        inputs = self.inputs_from_history(self._history)
        try:
            result = await self.agent.call(**inputs)
        except AgentFailedError as exc:
            content = json.dumps({"error": exc.reason, "raw_reply": exc.raw_reply})
        else:
            output = result.output.to_row()
            content = json.dumps(output) if self.agent.card.output_format == "json" else result.raw_reply
        reply = TextMessage(content=content, source=self.name)
        self._history.append(reply)
        return Response(chat_message=reply)

    async def on_reset(self, cancellation_token: CancellationToken) -> None:
        self._history.clear()
