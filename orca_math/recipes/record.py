"""The recipe a run folder keeps, and the differences between two of them.

Every run writes `OUT/recipe.yaml`: the resolved recipe (every field, defaults included) plus a
`recorded` section with the library version and a hash of each agent's card and prompt template.
`orca-math run OUT/recipe.yaml --out NEW` runs it again; `orca-math diff A B` lists what differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from orca_math.recipes.fields import RecipeError

RECIPE_FILE = "recipe.yaml"

#: Fields that name where a run and its cache live, not what it computes: `diff` leaves them out.
PLACE_FIELDS = frozenset({"out", "engine.cache_file", "cache_file"})


def template_hashes() -> dict[str, str]:
    """``{agent.card: hash, agent.template: hash}`` for every registered agent."""
    from orca_math.agents import AGENT_CLASSES

    hashes: dict[str, str] = {}
    for name, agent_class in sorted(AGENT_CLASSES.items()):
        fingerprint = agent_class.class_fingerprint()
        hashes[f"{name}.card"] = fingerprint["card"]
        hashes[f"{name}.template"] = fingerprint["template"]
    return hashes


def recorded(recipe: BaseModel, *, run_key: str | None = None) -> BaseModel:
    """`recipe` with its `recorded` section filled in for this library and these templates."""
    from orca_math._version import __version__
    from orca_math.recipes.common import Recorded

    section = Recorded(orca_math_version=__version__, templates=template_hashes(), run_key=run_key)
    return recipe.model_copy(update={"recorded": section})


def write_run_recipe(recipe: BaseModel, out: str | Path, *, run_key: str | None = None) -> Path:
    """Write the resolved recipe of a run into its output folder as recipe.yaml; returns the file."""
    from orca_math.recipes.saving import save_recipe

    return save_recipe(recorded(recipe, run_key=run_key), Path(out) / RECIPE_FILE)


def changed_templates(recipe: BaseModel) -> list[str]:
    """Agents whose card or template differs from what a recorded recipe ran with (empty when not recorded)."""
    section = getattr(recipe, "recorded", None)
    if section is None:
        return []
    now = template_hashes()
    return sorted(name for name, value in section.templates.items() if now.get(name) != value)


def _cache_owner(recipe: BaseModel) -> BaseModel | None:
    """The part of a recipe holding its `cache` and `cache_file` fields (generate: `engine`), or None."""
    for owner in (getattr(recipe, "engine", None), recipe):
        if owner is not None and "cache_file" in type(owner).model_fields:
            return owner
    return None


def reuse_recorded_cache(recipe: BaseModel, folder: str | Path, out: str | Path) -> BaseModel:
    """`recipe` reading the response cache of the run recorded in `folder`, when it runs in another folder `out`.

    Reproducing a recorded run (`orca-math run RUN/recipe.yaml --out NEW`) then answers every call whose
    model and prompt are unchanged from RUN's cache instead of paying for it again. A recipe with the
    cache off, with its own cache file, or recorded without a cache is returned as it is.
    """
    # Imported here, not at import time: the engine is heavy for `orca-math diff`.
    from orca_math.engine.folder import CACHE_FILE

    owner, cache = _cache_owner(recipe), Path(folder) / CACHE_FILE
    if owner is None or not owner.cache or owner.cache_file or not cache.is_file() or \
            Path(out).resolve() == Path(folder).resolve():
        return recipe
    moved = owner.model_copy(update={"cache_file": str(cache)})
    return recipe.model_copy(update={"engine": moved}) if owner is not recipe else moved


def recipe_file(path: str | Path) -> Path:
    """A run folder's recipe.yaml, or the recipe file itself."""
    path = Path(path)
    if path.is_dir():
        if not (path / RECIPE_FILE).is_file():
            raise RecipeError(f"{path} holds no {RECIPE_FILE}; only runs made by this version of orca-math record "
                              "their recipe.")
        return path / RECIPE_FILE
    if not path.exists():
        raise RecipeError(f"{path} does not exist; give a run folder or a recipe file.")
    return path


def _leaves(recipe: BaseModel) -> dict[str, Any]:
    """Every field by dotted path (a mapping-valued field is one value), and each recorded template hash."""
    from orca_math.recipes.fields import walk

    values: dict[str, Any] = {}
    data = recipe.model_dump(mode="json")
    for path, _, _ in walk(type(recipe)):
        value: Any = data
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if path == "recorded":
            for key, item in (value or {}).items():
                if isinstance(item, dict):
                    values.update({f"recorded.{key}.{name}": hashed for name, hashed in item.items()})
                else:
                    values[f"recorded.{key}"] = item
        else:
            values[path] = value
    return values


def diff_recipes(a: BaseModel, b: BaseModel) -> list[tuple[str, Any, Any]]:
    """(dotted field, value in a, value in b) for every field and template hash that differs.

    Where the runs live (`out`, `engine.cache_file`) is left out; the library version is included.
    """
    if a.kind != b.kind:  # type: ignore[attr-defined]
        return [("kind", a.kind, b.kind)]  # type: ignore[attr-defined]
    left, right = _leaves(a), _leaves(b)
    keys = list(left) + [key for key in right if key not in left]
    return [(key, left.get(key), right.get(key)) for key in keys
            if key not in PLACE_FIELDS and left.get(key) != right.get(key)]


__all__ = ["RECIPE_FILE", "changed_templates", "diff_recipes", "recipe_file", "recorded", "reuse_recorded_cache", "template_hashes",
           "write_run_recipe"]
