"""Prompt templates: Jinja2 files rendered in a sandbox with strict variables.

A template's variables are checked before rendering, and a missing one raises `TemplateError`
naming every missing variable. Values are inserted as data: braces or Jinja syntax inside a seed
problem are never evaluated.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

from orca_math.errors import ConfigError
from orca_math.resources import resource_dir


class TemplateError(ConfigError):
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

    @cached_property
    def literal_text(self) -> str:
        """The template's own words: its text, with `_GAP` where each Jinja expression or tag was."""
        return _GAP.join(value for _, kind, value in _ENV.lex(self.source) if kind == "data")

    @cached_property
    def placeholders(self) -> frozenset[str]:
        """The angle-bracket placeholders of the reply format it shows, such as `<the new problem>`."""
        return frozenset(match.group(0) for match in _PLACEHOLDER.finditer(self.literal_text))

    @cached_property
    def instructions(self) -> frozenset[str]:
        """Its instruction sentences (of at least 4 words), normalised as by `normalise_words`.

        Quoted text and placeholders are left out: they hold examples and the reply's shape. A
        sentence with a variable in it is cut there, since a reply would hold the value, not a gap.
        """
        text = _PLACEHOLDER.sub(_GAP, _QUOTED.sub(_GAP, self.literal_text))
        sentences = (normalise_words(part) for part in _SENTENCE_END.split(text))
        return frozenset(s for s in sentences if len(s.split()) >= _MIN_INSTRUCTION_WORDS)

    def echo_in(self, text: str, *, inputs: Iterable[str] = ()) -> str | None:
        """Why `text` (a reply, or one field of it) copies this template instead of answering; None if it doesn't.

        It copies the template when it holds one of its placeholders, is itself a placeholder
        (`<...>`), or consists of its instructions: once its instruction sentences and the prompt's
        input values (`inputs`) are taken out, less than half of it is left. A reply that merely
        mentions an instruction ("Let's solve this step by step. ...") is not an echo.
        """
        lowered = text.lower()
        for placeholder in sorted(self.placeholders):
            if placeholder.lower() in lowered:
                return f"it copies the placeholder {placeholder} from the prompt instead of filling it in"
        if _WHOLE_PLACEHOLDER.fullmatch(text):
            return f"it is a placeholder ({text.strip()[:60]}) instead of content"
        words = f" {normalise_words(text)} "
        found = [sentence for sentence in self.instructions if f" {sentence} " in words]
        if not found:
            return None
        rest = words
        for piece in sorted({*found, *(normalise_words(i) for i in inputs)}, key=len, reverse=True):
            if piece:
                rest = rest.replace(f" {piece} ", " ")
        if len(rest.replace(" ", "")) * 2 > len(words.replace(" ", "")):
            return None
        return f"it repeats the prompt's instructions ({found[0][:60]}...) instead of answering"

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


_PLACEHOLDER = re.compile(r"<[^<>{}\n]{1,80}>")
_WHOLE_PLACEHOLDER = re.compile(r"\s*[\"']?<[^<>]{1,200}>[\"']?\s*")
_QUOTED = re.compile(r'"[^"]*"')
_GAP = "\x00"  # stands for a variable, a tag or a quotation: no sentence runs across it
# Sentences end at a stop, a blank line or a gap; a single line break is only the template's wrapping.
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+|\n\s*\n|\x00")
_MIN_INSTRUCTION_WORDS = 4


def normalise_words(text: str) -> str:
    """Lower-case words and numbers joined by single spaces: punctuation and layout don't count."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


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
