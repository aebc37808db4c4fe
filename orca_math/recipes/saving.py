"""Writing a recipe file, and the secret check every recipe passes on its way in or out.

Apart from `orca_math.recipes.files` (which reads recipes of every kind) so that a recipe can
record itself in a run folder without importing the readers of all the other kinds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from orca_math.recipes.fields import RecipeError

#: Field names that hold secrets. Keys come from the environment only, so a recipe never holds one.
_SECRET_NAME = re.compile(r"(^|_)(api_?key|secret|password|passwd|access_?token|auth_?token|bearer|credentials?)($|_)",
                          re.IGNORECASE)
#: Values that look like provider keys (OpenAI, Anthropic, Hugging Face, AWS, a bearer header, a key or a
#: password in a URL).
_SECRET_VALUE = re.compile(r"(\bsk-[A-Za-z0-9_-]{16,}|\bhf_[A-Za-z0-9]{20,}|\bAKIA[0-9A-Z]{16}\b|\bBearer\s+\S{12,}"
                           r"|[?&](api[_-]?key|key|token)=[^&\s]{12,}|://[^/\s:@]+:[^/\s@]+@)")


def refuse_secrets(data: Any, source: str, path: str = "") -> None:
    """Raise `RecipeError` when a field is named like a secret or a value looks like an API key."""
    if isinstance(data, Mapping):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if _SECRET_NAME.search(str(key)) and value not in (None, ""):
                raise RecipeError(f"{source}: field {where} holds a secret; recipes never hold API keys: set it in the "
                                  "environment (e.g. OPENAI_API_KEY) and remove it from the recipe.")
            refuse_secrets(value, source, where)
    elif isinstance(data, list | tuple):
        for index, value in enumerate(data):
            refuse_secrets(value, source, f"{path}[{index}]")
    elif isinstance(data, str) and _SECRET_VALUE.search(data):
        raise RecipeError(f"{source}: field {path} holds what looks like an API key; recipes never hold API keys: set "
                          "it in the environment (e.g. OPENAI_API_KEY) and remove it from the recipe.")


def recipe_yaml(recipe: BaseModel) -> str:
    """A recipe as YAML, every field written (defaults too), in declaration order."""
    data = recipe.model_dump(mode="json", exclude_none=False)
    if data.get("recorded") is None:
        data.pop("recorded", None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def save_recipe(recipe: BaseModel, path: str | Path) -> Path:
    """Write a recipe file (its folder is created); secrets are refused, as on reading."""
    refuse_secrets(recipe.model_dump(mode="json"), str(path))
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(recipe_yaml(recipe), encoding="utf-8")
    return file


__all__ = ["recipe_yaml", "refuse_secrets", "save_recipe"]
