"""Command-line flags written from recipe fields, as TRL's `HfArgumentParser` writes them from dataclasses.

A recipe field (`orca_math.recipes`) already holds a flag's name, default, bounds, choices and help
text. `add_recipe_flags` adds the flags of a recipe section to a parser from those fields, so the
flag, the recipe key and the Python argument are one definition and cannot drift apart. Bounds map
to the argument types of `orca_math.cli.arguments`, so a refused value reads as it always did
("--rounds must be an integer of 0 or more, not '-1'").
"""

from __future__ import annotations

import argparse
import typing
from collections.abc import Iterable
from typing import Any

from orca_math.cli import arguments


def _bounds(field: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in field.metadata:
        for name in ("ge", "gt", "le", "lt"):
            if getattr(item, name, None) is not None:
                found[name] = getattr(item, name)
    return found


def _argument_type(kind: type, bounds: dict[str, Any]) -> Any:
    """The `orca_math.cli.arguments` type for a number field with these bounds (the plain type without)."""
    table = {
        (int, (("ge", 1),)): arguments.positive_int,
        (int, (("ge", 0),)): arguments.non_negative_int,
        (float, (("gt", 0),)): arguments.positive_float,
        (float, (("ge", 0),)): arguments.non_negative_float,
        (float, (("ge", 0), ("le", 1))): arguments.share,
        (float, (("gt", 0), ("lt", 1))): arguments.open_share,
        (float, (("gt", 0), ("le", 1))): arguments.top_p,
    }
    key = (kind, tuple(sorted(bounds.items())))
    if bounds and key not in table:
        raise TypeError(f"no argument type for {kind.__name__} with bounds {bounds}; add one to orca_math.cli.arguments")
    return table.get(key, kind)


def _plain(annotation: Any) -> Any:
    """`X | None` as X."""
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        return args[0]
    return annotation


def argument_options(field: Any, info: dict[str, Any]) -> dict[str, Any]:
    """The `add_argument` keywords of one recipe field with a flag."""
    help_text = (field.description or "").replace("%", "%%")
    annotation = _plain(field.annotation)
    if field.is_required():
        return {"dest": info["dest"], "required": True, "help": help_text,
                **({"metavar": info["metavar"]} if info.get("metavar") else {})}
    default = field.get_default(call_default_factory=True)
    options: dict[str, Any] = {"dest": info["dest"]}
    if info.get("metavar"):
        options["metavar"] = info["metavar"]
    if info.get("codec") == "shares":  # a mapping in one flag: NAME=VALUE,NAME=VALUE
        return {**options, "default": None, "help": help_text}
    if info.get("codec"):  # a mapping: one NAME=VALUE flag per item
        return {**options, "action": "append", "default": [], "help": f"{help_text} (repeatable)"}
    if annotation is bool:
        return {**options, "action": "store_true", "help": f"turn off {help_text}" if info.get("invert") else help_text}
    if typing.get_origin(annotation) is list:
        choices = typing.get_args(typing.get_args(annotation)[0]) if typing.get_args(annotation) else ()
        return {**options, "action": "append", "default": [], "help": f"{help_text} (repeatable)",
                **({"choices": list(choices)} if choices else {})}
    if info.get("registry"):  # plug-ins' names too, read only when shown or not a built-in one
        from orca_math.registries import choices_of

        options["choices"] = choices_of(info["registry"])
    elif typing.get_origin(annotation) is typing.Literal:
        options["choices"] = list(typing.get_args(annotation))
    elif annotation in (int, float):
        options["type"] = _argument_type(annotation, _bounds(field))
    if default is not None:  # said once, inside a closing parenthesis when the text ends with one
        help_text = f"{help_text[:-1]}; default {default})" if help_text.endswith(")") else f"{help_text} (default {default})"
    return {**options, "default": default, "help": help_text}


def add_recipe_flags(parser: argparse.ArgumentParser, section: Any, *, only: Iterable[str] | None = None) -> None:
    """Add the flags of a recipe section's fields (those of `only`, in its order, when given)."""
    from orca_math.recipes.fields import flag_info

    names = list(only) if only is not None else list(section.model_fields)
    for name in names:
        info = flag_info(section, name)
        if info.get("flag"):
            parser.add_argument(info["flag"], *info.get("aliases", ()), **argument_options(section.model_fields[name], info))


__all__ = ["add_recipe_flags", "argument_options"]
