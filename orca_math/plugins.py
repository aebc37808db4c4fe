"""One registry per plug-in kind: a ``{name: factory}`` table declared once, open to other packages.

Each kind of plug-in (model spec kinds, batch backends, executors) has one `Registry`. orca-math
adds its own entries where the kind is defined; other installed packages add theirs through a
Python entry point in the registry's group, with no change to orca-math::

    # the plug-in package's pyproject.toml
    [project.entry-points."orca_math.executors"]
    slurm = "my_package.slurm:SlurmExecutor"

The entry point names the plug-in and points at its factory (or at a ready `Plugin`, to give a help
text and an `accepts` test as well). Help texts and command-line choices are read from the
registries, so a new entry shows up in ``orca-math ... --help`` and in error messages by itself.

Entry points are read once, the first time a registry is asked for its entries. A plug-in that
fails to load is skipped with a warning that names it (one broken package must not break every
command); a plug-in may not replace a built-in entry of the same name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plugin:
    """One registry entry.

    Attributes:
        name: what users type (a spec prefix, a ``--backend`` or ``--executor`` choice).
        factory: builds the plug-in's object; what its arguments are is the registry's contract.
        help: a short text for ``--help`` and error messages.
        accepts: for registries that choose by the object at hand (batch backends choose by the
            model client): true when this entry handles it. None: chosen by name only.
        source: where the entry comes from: "orca-math", or the entry point's distribution.
        tags: what the registry needs to know besides the name (a model spec kind tagged
            "checkpoint" names a local checkpoint, fingerprinted into run keys).
    """

    name: str
    factory: Callable[..., Any]
    help: str = ""
    accepts: Callable[[Any], bool] | None = None
    source: str = "orca-math"
    tags: frozenset[str] = frozenset()


class Registry:
    """A ``{name: Plugin}`` table of one kind, filled by orca-math and by entry points in `group`.

    Args:
        kind: what the entries are, for messages ("executor", "batch backend", "model spec kind").
        group: the entry-point group other packages register in (``orca_math.executors`` ...).
    """

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, Plugin] = {}
        self._discovered = False

    def add(self, name: str, factory: Callable[..., Any], *, help: str = "",
            accepts: Callable[[Any], bool] | None = None, tags: Iterable[str] = ()) -> Plugin:
        """Register a built-in entry (or one added from Python code); returns it.

        Raises:
            ValueError: `name` is empty or already registered.
        """
        if not name or not isinstance(name, str):
            raise ValueError(f"A {self.kind} needs a non-empty name, not {name!r}.")
        if name in self._entries:
            raise ValueError(f"The {self.kind} {name!r} is registered already ({self._entries[name].source}).")
        plugin = Plugin(name=name, factory=factory, help=help, accepts=accepts, tags=frozenset(tags))
        self._entries[name] = plugin
        return plugin

    def remove(self, name: str) -> None:
        """Forget an entry (for tests and for packages that registered one from code)."""
        self._entries.pop(name, None)

    def entries(self, *, discover: bool = True) -> dict[str, Plugin]:
        """Every entry, built-in ones first, then the installed packages' entry points.

        Args:
            discover: False: only the entries registered from code, without reading the installed
                packages' entry points (which takes tens of milliseconds, once per process).
        """
        if discover and not self._discovered:
            self._discovered = True
            self._discover()
        return dict(self._entries)

    def names(self) -> list[str]:
        """The entries' names, in registration order."""
        return list(self.entries())

    def get(self, name: str) -> Plugin | None:
        """The entry called `name`, or None (entry points are read only for a name that is not built in)."""
        found = self._entries.get(name)  # a plug-in never replaces a built-in: no need to read them first
        return found if found is not None else self.entries().get(name)

    def choose(self, thing: Any, *, discover: bool = True) -> Plugin | None:
        """The first entry whose `accepts` says yes to `thing`, or None.

        Built-in entries are asked first; entry points are read only when none of them accepts
        (and `discover` is true).
        """
        for plugin in self.entries(discover=False).values():
            if plugin.accepts is not None and plugin.accepts(thing):
                return plugin
        if not discover or self._discovered:
            return None
        return self.choose(thing, discover=False) if self.entries() else None

    def choices(self) -> Choices:
        """The names, for argparse's ``choices=``: entry points are read only when a name is not a built-in one,
        or when the choices are shown (``--help``, an error), so parsing the default costs nothing."""
        return Choices(self)

    def __iter__(self) -> Iterator[Plugin]:
        return iter(self.entries().values())

    def __contains__(self, name: object) -> bool:
        return name in self.entries()

    def rediscover(self) -> None:
        """Read the entry points again on next use (after installing a plug-in in a running process)."""
        self._entries = {name: plugin for name, plugin in self._entries.items() if plugin.source == "orca-math"}
        self._discovered = False

    def _discover(self) -> None:
        for point in entry_points(group=self.group):
            dist = getattr(getattr(point, "dist", None), "name", None) or point.value
            if point.name in self._entries:
                logger.warning("Ignored the %s %r from %s (entry point %s): orca-math has one of that name.",
                               self.kind, point.name, dist, self.group)
                continue
            try:
                loaded = point.load()
            except Exception as exc:  # a broken plug-in package: say which, and go on without it
                logger.warning("Could not load the %s %r from %s (entry point %s = %s): %s",
                               self.kind, point.name, dist, self.group, point.value, exc)
                continue
            if isinstance(loaded, Plugin):
                plugin = replace(loaded, name=point.name, source=dist)
            elif callable(loaded):
                doc = (getattr(loaded, "__doc__", None) or "").strip().splitlines()
                plugin = Plugin(name=point.name, factory=loaded, help=doc[0].rstrip(".") if doc else "", source=dist)
            else:
                logger.warning("Ignored the %s %r from %s: entry point %s = %s is neither a factory nor a Plugin.",
                               self.kind, point.name, dist, self.group, point.value)
                continue
            self._entries[point.name] = plugin


def lazy(reference: str) -> Callable[..., Any]:
    """A factory that imports ``"module:attribute"`` on its first call, as an entry point is loaded.

    Built-in entries are declared this way, so reading a registry (``--help``) imports none of them.
    """

    def factory(*args: Any, **kwargs: Any) -> Any:
        module, _, attribute = reference.partition(":")
        return getattr(import_module(module), attribute)(*args, **kwargs)

    factory.__qualname__ = factory.__name__ = f"lazy({reference})"
    return factory


def check_name(name: Any, names: list[str], known: Callable[[Any], bool]) -> Any:
    """`name` itself when `known(name)`, for a pydantic ``AfterValidator`` on a field that takes a registered name.

    Raises:
        PydanticCustomError: as a ``literal_error`` listing `names`, so the one-sentence messages of
            `orca_math.options` and the recipe files read as for a fixed set of choices.
    """
    if known(name):
        return name
    from pydantic_core import PydanticCustomError

    quoted = [repr(item) for item in names]
    expected = ", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else "".join(quoted)
    raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})


class Choices:
    """A registry's names as a lazy container (see `Registry.choices`)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def __contains__(self, name: object) -> bool:
        return name in self.registry.entries(discover=False) or name in self.registry.entries()

    def __iter__(self) -> Iterator[str]:
        return iter(self.registry.names())

    def __len__(self) -> int:
        return len(self.registry.names())


__all__ = ["Choices", "Plugin", "Registry", "check_name", "lazy"]
