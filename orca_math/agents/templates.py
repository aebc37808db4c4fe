"""Prompt templates: Jinja2 files rendered in a sandbox with strict variables.

A template's variables are checked before rendering, and a missing one raises `TemplateError`
naming every missing variable. Values are inserted as data: braces or Jinja syntax inside a seed
problem are never evaluated.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

from orca_math.resources import resource_dir


class TemplateError(ValueError):
    """A template is missing, does not compile, or lacks variables."""


_ENV = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


class PromptTemplate:
    """A compiled prompt template.

    Args:
        source: the template text.
        name: a name for error messages (usually the file name).
    """

    def __init__(self, source: str, *, name: str = "<string>") -> None:
        self.source = source
        self.name = name
        try:
            self._template = _ENV.from_string(source)
            self.variables = frozenset(meta.find_undeclared_variables(_ENV.parse(source)))
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"template {name}, line {exc.lineno}: {exc.message}") from None
        self._optional = _variables_with_defaults(source)

    @classmethod
    def from_file(cls, path: str | Path) -> PromptTemplate:
        path = Path(path)
        if not path.exists():
            raise TemplateError(f"template file {path} does not exist")
        return cls(path.read_text(encoding="utf-8"), name=path.name)

    @property
    def required_variables(self) -> frozenset[str]:
        """Variables that must be given (those without a `| default(...)`)."""
        return self.variables - self._optional

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]

    def check(self, values: dict[str, Any]) -> None:
        """Raise `TemplateError` naming every required variable missing from `values`."""
        missing = sorted(self.required_variables - values.keys())
        if missing:
            raise TemplateError(f"template {self.name} is missing variable(s): {', '.join(missing)}")

    def render(self, **values: Any) -> str:
        self.check(values)
        try:
            return self._template.render(**values).strip()
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"template {self.name}: {exc.message}") from None


def _variables_with_defaults(source: str) -> frozenset[str]:
    """Names used as `name | default(...)`, which may be left out."""
    optional = set()
    for node in _ENV.parse(source).find_all(jinja2.nodes.Filter):
        if node.name == "default" and isinstance(node.node, jinja2.nodes.Name):
            optional.add(node.node.name)
    return frozenset(optional)


def load_template(name: str, *, search: list[Path] | None = None) -> PromptTemplate:
    """Find a template by file name in `search` folders, then in the shipped prompts/ folder."""
    candidate = Path(name)
    if candidate.is_absolute() and candidate.exists():
        return PromptTemplate.from_file(candidate)
    for folder in [*(search or []), resource_dir("prompts")]:
        if (folder / name).exists():
            return PromptTemplate.from_file(folder / name)
    raise TemplateError(f"template {name!r} was not found in: {', '.join(str(f) for f in [*(search or []), resource_dir('prompts')])}")
