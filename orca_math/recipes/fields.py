"""The pieces every recipe model is built from: a closed section, a field that knows its flag, and errors.

A recipe field is a pydantic field with a `description` (the flag's help text and the schema
page's text) and, in its `json_schema_extra`, the command-line flag it stands for:

* ``flag``: the option, e.g. ``--rounds`` (its argparse dest is derived from it, or given as ``dest``);
* ``invert``: the field is True where the flag is absent (``dedup`` and ``--no-dedup``);
* ``codec``: how a mapping is written on the command line (``pairs``: ``NAME=VALUE`` per item);
* ``metavar``: the flag's placeholder in help texts; ``aliases``: other names of the flag.

`orca_math.recipes.flags` turns a recipe into the argv of its command and a parsed command line back
into a recipe, so a flag and its field are one definition and go through one code path.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orca_math.errors import ConfigError
from orca_math.options import _accepted


class RecipeError(ConfigError):
    """A recipe that cannot be used: the message is one sentence naming the file and the field."""


class Section(BaseModel):
    """A closed group of recipe fields: an unknown key is an error, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def option(default: Any = None, description: str = "", *, flag: str | None = None, dest: str | None = None,
           invert: bool = False, codec: str | None = None, metavar: str | None = None,
           aliases: tuple[str, ...] = (), registry: str | None = None, **bounds: Any) -> Any:
    """A recipe field: its default, help text, bounds and (when it has one) the flag it stands for.

    ``registry`` names the `orca_math.registries` table whose names the field takes (its flag's choices).
    """
    extra: dict[str, Any] = {}
    if flag:
        extra["flag"] = flag
        extra["dest"] = dest or flag.lstrip("-").replace("-", "_")
    if invert:
        extra["invert"] = True
    if codec:
        extra["codec"] = codec
    if metavar:
        extra["metavar"] = metavar
    if aliases:
        extra["aliases"] = list(aliases)
    if registry:
        extra["registry"] = registry
    factory = None
    if isinstance(default, dict | list):
        factory, default = (lambda value=default: type(value)(value)), None
    if factory is not None:
        return Field(default_factory=factory, description=description, json_schema_extra=extra or None, **bounds)
    return Field(default, description=description, json_schema_extra=extra or None, **bounds)


def flag_info(model: type[BaseModel], name: str) -> dict[str, Any]:
    """The flag metadata of one field (empty when the field has no flag)."""
    extra = model.model_fields[name].json_schema_extra
    return dict(extra) if isinstance(extra, dict) else {}


def section_type(annotation: Any) -> type[BaseModel] | None:
    """The `Section` class a field holds, or None for a plain value (``X | None`` is looked through)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def validation_error(model: type[BaseModel], error: ValidationError, source: str) -> RecipeError:
    """One sentence for the first problem pydantic found, naming the source and the field's dotted path."""
    detail = error.errors(include_url=False)[0]
    loc = [str(part) for part in detail.get("loc", ())]
    kind = detail["type"]
    path = ".".join(loc)
    if kind == "extra_forbidden":
        known = list(_model_at(model, loc[:-1]).model_fields)
        where = ".".join(loc[:-1]) + "." if len(loc) > 1 else ""
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f" (did you mean {where}{close[0]}?)" if close else ""
        return RecipeError(f"{source}: unknown field {where}{loc[-1]}{hint}; the fields there are {', '.join(known)}.")
    if kind == "missing":
        return RecipeError(f"{source}: field {path} is required ({_description(model, loc)}).")
    value = detail.get("input")
    shown = value if isinstance(value, str | int | float | bool) or value is None else type(value).__name__
    return RecipeError(f"{source}: field {path}={shown!r} must be {_accepted(kind, detail.get('ctx') or {}, detail)}.")


def _model_at(model: type[BaseModel], loc: list[str]) -> type[BaseModel]:
    for part in loc:
        field = model.model_fields.get(part)
        inner = section_type(field.annotation) if field else None
        if inner is None:
            break
        model = inner
    return model


def _description(model: type[BaseModel], loc: list[str]) -> str:
    owner = _model_at(model, loc[:-1])
    field = owner.model_fields.get(loc[-1]) if loc else None
    return (field.description or "no description") if field else "see docs/recipes.md"


def walk(model: type[BaseModel], prefix: str = "") -> list[tuple[str, type[BaseModel], str]]:
    """Every leaf field as (dotted path, owning model class, field name), in declaration order."""
    leaves: list[tuple[str, type[BaseModel], str]] = []
    for name, field in model.model_fields.items():
        inner = section_type(field.annotation)
        path = f"{prefix}{name}"
        if inner is not None and name != "recorded":
            leaves += walk(inner, path + ".")
        else:
            leaves.append((path, model, name))
    return leaves


def get_path(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of nested mappings (None where a level is missing)."""
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


__all__ = ["RecipeError", "Section", "flag_info", "get_path", "option", "section_type",
           "validation_error", "walk"]
