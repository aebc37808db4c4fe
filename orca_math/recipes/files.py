"""Recipe files: read (with `--set` overrides), refuse secrets, write, and record one in a run folder.

A recipe file is YAML. It holds one recipe, or several as YAML documents (``---``) that run in
order, for example a generate recipe and the learn recipe that trains on its output. Every problem
is one `RecipeError` sentence naming the file and the field.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from orca_math.recipes.fields import RecipeError, validation_error
from orca_math.recipes.flags import RECIPE_KINDS
from orca_math.recipes.saving import recipe_yaml, refuse_secrets, save_recipe


def recipe_from_mapping(data: Any, source: str = "recipe") -> BaseModel:
    """Validate one recipe mapping; its `kind` chooses the model."""
    if not isinstance(data, Mapping):
        raise RecipeError(f"{source}: a recipe is a mapping of fields (kind: generate, ...), not {type(data).__name__}.")
    refuse_secrets(data, source)
    kind = data.get("kind")
    if kind not in RECIPE_KINDS:
        close = difflib.get_close_matches(str(kind), list(RECIPE_KINDS), n=1)
        hint = f" (did you mean {close[0]}?)" if close and kind is not None else ""
        raise RecipeError(f"{source}: field kind={kind!r} must be one of {', '.join(RECIPE_KINDS)}{hint}.")
    model = RECIPE_KINDS[kind]
    try:
        return model.model_validate(dict(data))
    except ValidationError as error:
        raise validation_error(model, error, source) from None


def parse_set(assignment: str) -> tuple[str, Any]:
    """``path.to.field=value`` as (path, value), the value read as YAML (``4`` is a number, ``[a, b]`` a list)."""
    path, sep, raw = assignment.partition("=")
    path = path.strip()
    if not sep or not path:
        raise RecipeError(f"--set {assignment!r}: write path.to.field=VALUE, e.g. --set seeds.limit=10.")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return path, value


def apply_set(data: dict[str, Any], path: str, value: Any, source: str) -> None:
    """Set a dotted path in a recipe mapping, creating sections on the way (the model checks the names)."""
    level = data
    *parents, leaf = path.split(".")
    for part in parents:
        nested = level.get(part)
        if nested is None:
            nested = level[part] = {}
        if not isinstance(nested, dict):
            raise RecipeError(f"{source}: --set {path}: {part} is a value, not a section.")
        level = nested
    level[leaf] = value


def load_recipes(path: str | Path, overrides: Iterable[str] = ()) -> list[BaseModel]:
    """The recipes of a file, in order, with `--set` overrides applied.

    With several documents, each override names the document by its kind first
    (``learn.sampling.k=8``); with one, the kind prefix may be left out.

    Raises:
        RecipeError: a missing or unreadable file, a typo, a wrong type or bound, or a secret.
    """
    source = str(path)
    file = Path(path)
    if not file.is_file():
        raise RecipeError(f"recipe file {source} does not exist." if not file.exists() else
                          f"recipe {source} is a folder; give its recipe.yaml.")
    try:
        documents = [doc for doc in yaml.safe_load_all(file.read_text(encoding="utf-8")) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise RecipeError(f"{source}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc}).") from None
    if not documents:
        raise RecipeError(f"{source}: the file holds no recipe.")
    kinds = [doc.get("kind") if isinstance(doc, Mapping) else None for doc in documents]
    for assignment in overrides:
        target, value = parse_set(assignment)
        head, _, rest = target.partition(".")
        if len(documents) > 1:
            if head not in kinds or not rest:
                raise RecipeError(f"--set {target}: {source} holds several recipes ({', '.join(map(str, kinds))}); "
                                  f"name one first, e.g. --set {kinds[0]}.{target}.")
            apply_set(documents[kinds.index(head)], rest, value, source)
        else:
            if head == kinds[0] and rest:  # 'generate.seeds.limit' names the one document by its kind
                target = rest
            apply_set(documents[0], target, value, source)
    return [recipe_from_mapping(doc, source if len(documents) == 1 else f"{source} ({kinds[i]})")
            for i, doc in enumerate(documents)]


__all__ = ["apply_set", "load_recipes", "parse_set", "recipe_from_mapping", "recipe_yaml", "refuse_secrets",
           "save_recipe"]
