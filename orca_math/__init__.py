"""orca-math: build Orca-Math-style math reasoning data with agents, and teach a small model on it."""

from orca_math._version import __version__  # noqa: E402 -- one place for the version

# The agents and load_model are imported on first use: `import orca_math` (and so every `orca-math`
# command, --help included) would otherwise pay for autogen, jinja2 and the engine up front.
_LAZY = {"AskMeAnything": "orca_math.agents", "Editor": "orca_math.agents", "Grader": "orca_math.agents",
         "Suggester": "orca_math.agents", "Teacher": "orca_math.agents", "load_model": "orca_math.models"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'orca_math' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["AskMeAnything", "Editor", "Grader", "Suggester", "Teacher", "load_model", "__version__"]
