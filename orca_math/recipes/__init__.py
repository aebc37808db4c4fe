"""Recipes: one typed definition for the Python API, the CLI flags and a YAML file.

A recipe is a pydantic model with closed sections (`extra="forbid"`), bounds and a description
on every field. Its `kind` chooses the job:

* `GenerateRecipe` (`orca-math generate`), `LearnRecipe` (`orca-math learn`), `EvalRecipe` (`orca-math eval`).

Every field with a flag stands for that flag, with the flag's default, so
`orca-math run recipe.yaml` parses the command line the recipe means with the command's own parser
and runs the command's own handler, and `--save-recipe` writes the recipe a command line means.
A run folder keeps its resolved recipe (`recipe.yaml`); `orca-math diff A B` compares two. See
docs/recipes.md.

    >>> from orca_math.recipes import load_recipes
    >>> [recipe] = load_recipes("recipes/quick-local.yaml", ["seeds.limit=2"])
    >>> Pipeline(recipe=recipe).run_sync(recipe.seeds.path, out="runs/demo")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orca_math.recipes.fields import RecipeError
    from orca_math.recipes.files import load_recipes, recipe_from_mapping, recipe_yaml, save_recipe
    from orca_math.recipes.flags import RECIPE_KINDS, recipe_argv, recipe_from_args
    from orca_math.recipes.generate import GenerateRecipe
    from orca_math.recipes.learn_eval import EvalRecipe, LearnRecipe
    from orca_math.recipes.record import diff_recipes, write_run_recipe

# Loaded on first use (PEP 562): a command that needs one section (`orca-math solve` reads the seed
# fields from `recipes.common`) then does not import every recipe, the benchmark list included.
_WHERE = {
    "RecipeError": "fields", "load_recipes": "files", "recipe_from_mapping": "files", "recipe_yaml": "files",
    "save_recipe": "files", "RECIPE_KINDS": "flags", "recipe_argv": "flags", "recipe_from_args": "flags",
    "GenerateRecipe": "generate", "EvalRecipe": "learn_eval", "LearnRecipe": "learn_eval", "diff_recipes": "record",
    "write_run_recipe": "record",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = ["RECIPE_KINDS", "EvalRecipe", "GenerateRecipe", "LearnRecipe", "RecipeError", "diff_recipes",
           "load_recipes", "recipe_argv", "recipe_from_args", "recipe_from_mapping", "recipe_yaml", "save_recipe",
           "write_run_recipe"]
