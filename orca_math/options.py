"""Typed, closed, frozen options: pydantic dataclasses whose bad values are one `ConfigError` sentence.

Every options object of the library (`TrainingPreset`, `PreferenceOptions`, `DedupOptions`,
`DecontaminationOptions`, `Price`, `Budget`) is declared with `options_dataclass`. Its fields carry
their bounds (``Annotated[int, Field(ge=1)]``, ``Literal[...]``), so there are no hand-written
checks, and it stays a real `dataclasses` dataclass: ``dataclasses.replace``, ``asdict``, ``fields``
and `transformers.HfArgumentParser` read it as usual.

    @options_dataclass
    class MyOptions:
        rounds: Annotated[int, Field(ge=1)] = 2

    MyOptions(rounds=0)   # ConfigError: MyOptions option rounds=0: rounds must be >= 1.
    MyOptions(round=2)    # UnknownOptionError: MyOptions got an unexpected keyword argument 'round' (did you mean 'rounds'?) ...
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import pydantic
from pydantic import ConfigDict, ValidationError

from orca_math.errors import ConfigError

T = TypeVar("T")


class UnknownOptionError(ConfigError, TypeError):
    """An option name that the options class does not have.

    It is also a `TypeError`, as Python's own "unexpected keyword argument" error is, so code written
    against the plain dataclasses these classes used to be keeps working.
    """


def options_dataclass(cls: type[T]) -> type[T]:
    """Make `cls` a frozen pydantic dataclass that forbids unknown fields and raises `ConfigError`.

    Positional arguments keep working (``Price(2.5, 10.0)``). Lax pydantic coercion applies: "3" is
    read as 3 for an int field, a list as a tuple for a tuple field.
    """
    built = pydantic.dataclasses.dataclass(frozen=True, config=ConfigDict(extra="forbid"))(cls)
    validating_init = built.__init__

    # pydantic raises its own ValidationError, a multi-line report aimed at developers; users of the
    # library and the CLI get one sentence naming the field, the value and what it accepts.
    @functools.wraps(validating_init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            validating_init(self, *args, **kwargs)
        except ValidationError as error:
            raise config_error(type(self), error) from None

    built.__init__ = __init__  # type: ignore[method-assign]
    return built


def field_names(cls: type) -> list[str]:
    """The field names of an options dataclass, in declaration order."""
    return [f.name for f in dataclasses.fields(cls)]


def name_with_hint(name: str, known: Iterable[str]) -> str:
    """``'dpo_betta' (did you mean 'dpo_beta'?)``, or just the quoted name when nothing is close."""
    hint = difflib.get_close_matches(name, list(known), n=1)
    return f"{name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")


def options_from_mapping(cls: type[T], values: Mapping[str, Any], what: str) -> T:
    """Build options from a config mapping (YAML, JSON), naming unknown keys with a close match.

    Args:
        cls: an `options_dataclass` class.
        values: option name -> value.
        what: how the options are called in messages, e.g. "dedup".

    Raises:
        UnknownOptionError: a key that is not a field of `cls`.
        ConfigError: a value outside its field's bounds.
    """
    if not isinstance(values, Mapping):
        raise ConfigError(f"{what} options must be a mapping of option names to values, not {type(values).__name__}.")
    known = field_names(cls)
    unknown = [key for key in values if key not in known]
    if unknown:
        described = ", ".join(name_with_hint(str(key), known) for key in unknown)
        raise UnknownOptionError(f"unknown {what} option {described}; the options are {', '.join(known)}.")
    return cls(**values)


def config_error(cls: type, error: ValidationError) -> ConfigError:
    """One sentence for every problem pydantic found in the options of `cls`."""
    details = error.errors(include_url=False)
    # A bad tuple item also fails the tuple's own length bound (the item is left out); name the item only.
    details = [d for d in details if not any(_inside(other["loc"], d["loc"]) for other in details)]
    problems = [_problem(cls, detail) for detail in details]
    kind = UnknownOptionError if all(p[0] for p in problems) else ConfigError
    return kind("; ".join(text for _, text in problems) + ".")


def _inside(inner: tuple, outer: tuple) -> bool:
    return len(inner) > len(outer) and inner[: len(outer)] == outer


def _problem(cls: type, detail: Mapping[str, Any]) -> tuple[bool, str]:
    # Returns (is an unknown name, text). Locations are (field,) or (field, index) for a tuple item.
    known = field_names(cls)
    # A positional argument is located by its index: name it by the field it fills.
    loc = [known[part] if i == 0 and isinstance(part, int) and part < len(known) else str(part)
           for i, part in enumerate(detail.get("loc", ()))]
    name = loc[0] if loc else "?"
    kind = detail["type"]
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        return True, (f"{cls.__name__} got an unexpected keyword argument {name_with_hint(name, known)}; "
                      f"its fields are {', '.join(known)}")
    if kind in ("missing_argument", "missing"):
        return False, f"{cls.__name__} needs {name}"
    if kind in ("unexpected_positional_argument", "too_many_positional_arguments"):
        return False, f"{cls.__name__} takes at most {len(known)} positional arguments ({', '.join(known)})"
    where = name + "".join(f"[{part}]" for part in loc[1:])
    value = detail.get("input")
    return False, f"{cls.__name__} option {where}={value!r}: {where} must be {_accepted(kind, detail.get('ctx') or {}, detail)}"


_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
_TYPES = {
    "int": "an integer", "float": "a number", "bool": "true or false", "string": "a string",
    "tuple": "a list", "list": "a list", "dict": "a mapping",
}


def _accepted(kind: str, ctx: Mapping[str, Any], detail: Mapping[str, Any]) -> str:
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)  # "> 0", not "> 0.0"
        return f"{_BOUNDS[kind]} {bound}" + (" (a positive number)" if (kind, bound) == ("greater_than", 0) else "")
    if kind == "literal_error":
        return "one of " + ctx.get("expected", "the listed values")
    if kind == "finite_number":
        return "a finite number"
    if kind == "string_too_short":
        return "a non-empty string"
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        return "a non-empty list" if least == 1 else f"a list of at least {least} items"
    if kind == "int_from_float":
        return "a whole number"
    prefix = kind.split("_", 1)[0]
    if prefix in _TYPES:
        return _TYPES[prefix]
    return str(detail.get("msg", "valid")).removeprefix("Input should be ").lower()


def refuse_beside_recipe(where: str, function: Any, given: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """Refuse, in one sentence, arguments of `function` passed beside ``recipe=``: they would be ignored.

    Args:
        where: how the call reads in the message, e.g. "IterativeLearner(recipe=...)".
        function: the function (or ``__init__``) whose defaults tell a passed argument from a left-out one.
        given: its arguments as called.
        allowed: the names that may be passed beside the recipe (``recipe`` itself among them).

    Raises:
        ConfigError: an argument other than `allowed` differs from its default.
    """
    import inspect

    defaults = {name: p.default for name, p in inspect.signature(function).parameters.items()}
    both = [name for name, value in given.items()
            if name not in allowed and name in defaults and value is not defaults[name] and value != defaults[name]]
    if both:
        raise ConfigError(f"{where} takes {', '.join(both)} from the recipe; change the recipe's fields instead of "
                          "passing them too.")


__all__ = ["refuse_beside_recipe", "UnknownOptionError", "config_error", "field_names", "name_with_hint", "options_dataclass",
           "options_from_mapping"]
