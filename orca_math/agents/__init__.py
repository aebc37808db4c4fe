"""The Orca-Math agents (the paper's five and the ProgramWriter that verification uses), their base class, cards and templates.

Build any agent against any chat model::

    from orca_math.agents import Teacher
    teacher = Teacher("openai:gpt-4o")          # or "local", a URL, or any ChatCompletionClient
    solution = await teacher.run(question="...")
"""

from orca_math.agents.ask_me_anything import AskMeAnything
from orca_math.agents.base import Agent, AgentFailedError, AgentResult, ReplyParseError, extract_json_object
from orca_math.agents.cards import AgentCard, CardError, load_card, shipped_cards, typical_completion_tokens
from orca_math.agents.editor import Editor
from orca_math.agents.grader import Grader
from orca_math.agents.program_writer import ProgramWriter
from orca_math.agents.student import Student
from orca_math.agents.suggester import Suggester
from orca_math.agents.teacher import FINAL_ANSWER_PREFIX, Teacher
from orca_math.agents.templates import PromptTemplate, TemplateError, load_template
from orca_math.answers import find_final_answer_line

__all__ = [
    "AGENT_CLASSES",
    "Agent",
    "AgentCard",
    "AgentFailedError",
    "AgentResult",
    "AskMeAnything",
    "CardError",
    "Editor",
    "FINAL_ANSWER_PREFIX",
    "Grader",
    "ProgramWriter",
    "PromptTemplate",
    "ReplyParseError",
    "Student",
    "Suggester",
    "Teacher",
    "TemplateError",
    "as_chat_agent",
    "extract_json_object",
    "find_final_answer_line",
    "load_card",
    "load_template",
    "shipped_cards",
    "typical_completion_tokens",
]


def _agent_classes() -> dict[str, type[Agent]]:
    """Each shipped card's agent class, by card name: a card's ``class`` names a class of this package."""
    classes: dict[str, type[Agent]] = {}
    for card in shipped_cards():
        found = globals().get(card.class_name or "")
        if not (isinstance(found, type) and issubclass(found, Agent)):
            raise CardError(f"agent card {card.path}: field 'class': {card.class_name!r} is not an agent class of orca_math.agents")
        classes[card.name] = found
    return classes


def __getattr__(name: str):
    # AGENT_CLASSES is read from the shipped cards on first use (a new agent is a card, a template and a class).
    if name == "AGENT_CLASSES":
        globals()["AGENT_CLASSES"] = classes = _agent_classes()
        return classes
    # autogen-agentchat is imported only when a chat agent is asked for.
    if name == "as_chat_agent":
        from orca_math.agents.chat import as_chat_agent

        return as_chat_agent
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
