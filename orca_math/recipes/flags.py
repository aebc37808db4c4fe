"""A recipe and its command line are one definition: the argv a recipe means, and the recipe flags mean.

`recipe_argv` writes the command line of a recipe (field → flag, from each field's metadata), so
`orca-math run` parses it with the command's own parser and calls the command's own handler: a flag
and its recipe field cannot go different ways. `recipe_from_args` reads a parsed command line back
into a recipe (`--save-recipe`).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pydantic import BaseModel, ValidationError

from orca_math.recipes.fields import RecipeError, flag_info, validation_error, walk
from orca_math.recipes.generate import GenerateRecipe
from orca_math.recipes.learn_eval import EvalRecipe, LearnRecipe

#: The recipe model of each kind; the kind is also the name of the command it runs.
RECIPE_KINDS: dict[str, type[BaseModel]] = {"generate": GenerateRecipe, "learn": LearnRecipe, "eval": EvalRecipe}


def _value_at(recipe: BaseModel, path: str) -> Any:
    value: Any = recipe
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(_scalar(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _encode(info: dict[str, Any], value: Any, annotation_default: Any) -> list[str]:
    flag = info["flag"]
    if isinstance(value, bool) and not info.get("codec"):
        return [flag] if value != bool(info.get("invert")) else []
    if value is None:
        return []
    codec = info.get("codec")
    if codec == "prices":
        return [part for name, (inp, out) in value.items() for part in (flag, f"{name}={inp},{out}")]
    if codec == "shares":
        return [flag, ",".join(f"{name}={share}" for name, share in value.items())]
    if codec in ("pairs", "preset"):
        return [part for name, item in value.items() for part in (flag, f"{name}={_scalar(item)}")]
    if isinstance(value, list):
        return [part for item in value for part in (flag, str(item))]
    return [flag, str(value)]


def recipe_argv(recipe: BaseModel) -> list[str]:
    """The command line (command name first) that means what `recipe` means; `out` is left to the caller."""
    argv = [recipe.kind]  # type: ignore[attr-defined]
    for path, owner, name in walk(type(recipe)):
        info = flag_info(owner, name)
        if info.get("flag"):
            argv += _encode(info, _value_at(recipe, path), owner.model_fields[name].default)
    return argv


def flag_paths(kind: str) -> dict[str, str]:
    """Flag → dotted recipe path, for wording a refused value by its field."""
    return {flag_info(owner, name)["flag"]: path for path, owner, name in walk(RECIPE_KINDS[kind])
            if flag_info(owner, name).get("flag")}


def _decode(info: dict[str, Any], value: Any) -> Any:
    if info.get("invert"):
        return not value
    codec = info.get("codec")
    if codec == "shares":
        from orca_math.pipeline.targets import parse_band_shares

        return None if value is None else parse_band_shares(str(value))
    if codec in ("prices", "pairs", "preset"):
        decoded: dict[str, Any] = {}
        for item in value or []:
            name, _, raw = str(item).partition("=")
            if codec == "prices":
                decoded[name.strip()] = tuple(float(part) for part in raw.split(","))
            elif codec == "pairs":
                decoded[name.strip()] = int(raw)
            else:  # each preset field as it takes it (100 -> int, a,b -> [a, b]); the preset checks them
                from orca_math.learn.presets import preset_value

                value = preset_value(name.strip(), raw)
                decoded[name.strip()] = list(value) if isinstance(value, tuple) else value
        return decoded
    return list(value) if isinstance(value, list) else value


def recipe_from_args(kind: str, args: argparse.Namespace) -> BaseModel:
    """The recipe a parsed command line of `kind` means (its `--out` included when given)."""
    data: dict[str, Any] = {"kind": kind}
    model = RECIPE_KINDS[kind]
    for path, owner, name in walk(model):
        info = flag_info(owner, name)
        if not info.get("flag") or not hasattr(args, info["dest"]):
            continue
        value = _decode(info, getattr(args, info["dest"]))
        level = data
        *parents, leaf = path.split(".")
        for part in parents:
            level = level.setdefault(part, {})
        level[leaf] = value
    if getattr(args, "out", None):
        data["out"] = str(args.out)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise validation_error(model, error, "the command line") from None


def default_recipe_error(kind: str, message: str) -> RecipeError:
    """An argparse refusal of a generated command line, worded by the recipe field instead of the flag."""
    for flag, path in sorted(flag_paths(kind).items(), key=lambda item: -len(item[0])):
        if message.startswith(flag + " ") or message.startswith(flag + ":"):
            return RecipeError(f"recipe field {path}{message[len(flag):].split(' (see ')[0]}.")
    return RecipeError(message)


__all__ = ["RECIPE_KINDS", "flag_paths", "recipe_argv", "recipe_from_args"]
