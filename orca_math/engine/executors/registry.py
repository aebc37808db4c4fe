"""Executors by name ("local", "ray", and plug-ins), from the registry `orca_math.registries.EXECUTORS`.

An executor plug-in is a factory that takes keyword settings and returns an
`orca_math.engine.executors.Executor`. The command line passes ``address=`` (``--ray-address``)
and ``workers=`` (``--workers``) when they are given, so a factory that takes neither is only
ever called with no arguments. Other packages add executors through the ``orca_math.executors``
entry-point group (see `orca_math.plugins` and docs/contributing.md).
"""

from __future__ import annotations

from typing import Any

from orca_math.engine.executors.base import Executor
from orca_math.engine.executors.local import LocalExecutor
from orca_math.errors import ConfigError
from orca_math.registries import EXECUTORS


def executor_names() -> list[str]:
    """The names `resolve_executor` and ``--executor`` accept."""
    return EXECUTORS.names()


def make_executor(name: str, **settings: Any) -> Executor:
    """Build the executor registered as `name` with `settings`.

    Raises:
        ConfigError: no executor of that name.
    """
    plugin = EXECUTORS.get(name)
    if plugin is None:
        raise ConfigError(f"executor={name!r}: use {_choices()}, or an Executor such as RayExecutor(address=...).")
    return plugin.factory(**settings)


def resolve_executor(executor: Executor | str | None) -> Executor:
    """An `Executor` from an instance, a registered name ("local", "ray" ...), or None (local)."""
    if executor is None:
        return LocalExecutor()
    if isinstance(executor, Executor):
        return executor
    if isinstance(executor, str):
        return make_executor(executor)
    raise ConfigError(f"executor={executor!r}: use {_choices()}, or an Executor such as RayExecutor(address=...).")


def _choices() -> str:
    names = [repr(name) for name in executor_names()]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


__all__ = ["executor_names", "make_executor", "resolve_executor"]
