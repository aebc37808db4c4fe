"""orca-math: build Orca-Math-style math reasoning data with agents, and teach a small model on it."""

from orca_math._version import __version__  # noqa: E402 -- one place for the version
from orca_math.agents import AskMeAnything, Editor, Grader, Suggester, Teacher  # noqa: E402
from orca_math.models import load_model  # noqa: E402

__all__ = ["AskMeAnything", "Editor", "Grader", "Suggester", "Teacher", "load_model", "__version__"]
