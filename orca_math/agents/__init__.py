"""The Orca-Math agents (the paper's five and the ProgramWriter that verification uses), their base class, cards and templates.

Build any agent against any chat model::

    from orca_math.agents import Teacher
    teacher = Teacher("openai:gpt-4o")          # or "local", a URL, or any ChatCompletionClient
    solution = await teacher.run(question="...")

The agent classes exported here are the ones the shipped cards name (`orca_math.agents.registry`):
a new agent is a card, a template and a class, with nothing to add to this file.
"""

from orca_math.agents.base import Agent, AgentFailedError, AgentResult, ReplyParseError, extract_json_object
from orca_math.agents.cards import AgentCard, CardError, OriginInfo, load_card, shipped_cards
from orca_math.agents.registry import (
    AGENTS,
    agent_cards,
    agent_classes,
    origin_info,
    origins,
    typical_completion_tokens,
)
from orca_math.agents.student import Student
from orca_math.agents.teacher import FINAL_ANSWER_PREFIX
from orca_math.agents.templates import PromptTemplate, TemplateError, load_template
from orca_math.answers import find_final_answer_line

# The shipped agents' classes, as their cards name them (Teacher, Suggester, ...).
_SHIPPED = {plugin.factory.__name__: plugin.factory for plugin in AGENTS.entries(discover=False).values()}
globals().update(_SHIPPED)

__all__ = [
    "AGENTS",
    "AGENT_CLASSES",
    "Agent",
    "AgentCard",
    "AgentFailedError",
    "AgentResult",
    "CardError",
    "FINAL_ANSWER_PREFIX",
    "OriginInfo",
    "PromptTemplate",
    "ReplyParseError",
    "Student",
    "TemplateError",
    "agent_cards",
    "agent_classes",
    "as_chat_agent",
    "extract_json_object",
    "find_final_answer_line",
    "load_card",
    "load_template",
    "origin_info",
    "origins",
    "shipped_cards",
    "typical_completion_tokens",
    *sorted(_SHIPPED),
]


def __getattr__(name: str):
    # Every registered agent's class by card name, read on first use (plug-ins' entry points included).
    # Not kept: a plug-in installed later in the same process shows up on the next read.
    if name == "AGENT_CLASSES":
        return agent_classes()
    # autogen-agentchat is imported only when a chat agent is asked for.
    if name == "as_chat_agent":
        from orca_math.agents.chat import as_chat_agent

        return as_chat_agent
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
