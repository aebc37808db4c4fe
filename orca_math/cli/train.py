"""`orca-math train`: SFT, DPO or KTO with TRL, and the preset options that `train` and `learn` share.

The preset flags (`--max_steps`, `--use-lora`, ...) are made by `transformers.HfArgumentParser` from
`TrainingPreset`'s own fields, types and ``help`` metadata; `--set FIELD=VALUE` reads its value with
the same flag's type. Bounds are the preset's own (a `ConfigError` naming the field).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib.util
import json
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orca_math.cli.learn_options import add_overwrite, check_out, user_error
from orca_math.errors import ConfigError


def __getattr__(name: str) -> Any:
    # PRESET_CHOICES is read from the preset registry when asked for: importing orca_math.learn (datasets)
    # at start-up would slow every command.
    if name == "PRESET_CHOICES":
        return preset_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def preset_names() -> tuple[str, ...]:
    """The names `--preset` accepts: the presets of `orca_math.learn.presets.PRESETS`."""
    from orca_math.learn.presets import PRESETS

    return tuple(PRESETS)


def add_parser(subparsers) -> None:
    # The command's own options come first, then the preset-field flags (both as argparse parents).
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("kind", choices=["sft", "dpo", "kto"], help="the trainer")
    own.add_argument("--data", required=True, metavar="DIR_OR_FILE", help="training data (see above)")
    own.add_argument("--model", required=True, metavar="PATH", help="model folder or Hub id to train")
    own.add_argument("--out", required=True, metavar="DIR", help="where the trained model and tokenizer are saved")
    own.add_argument("--ref-model", default=None, metavar="PATH",
                     help="DPO/KTO reference model (default: a frozen copy of --model)")
    add_preset_options(own)
    add_overwrite(own)
    parser = subparsers.add_parser(
        "train", help="train a model with SFT, DPO or KTO (TRL)", parents=[own],
        description="Train MODEL on DATA with TRL and save the model and tokenizer in OUT. DATA is a save_to_disk "
        "folder in the trainer's TRL format, or the output folder of `orca-math preferences` (its sft/, dpo/ or kto/ "
        "subfolder is used); for sft it may also be question/answer problems (any file `orca-math sample --data` "
        "reads). Every preset field is also a flag (--max-steps 100, --use-lora true); a field left out keeps its "
        "--preset value. Launch with `accelerate launch $(which orca-math) train ...` for several GPUs "
        "(docs/training.md).",
    )
    parser.defer_arguments(preset_flags)  # transformers (about 1 s) loads only when `train` parses or shows its help
    parser.set_defaults(handler=run_train)


def add_preset_options(parser: argparse.ArgumentParser) -> None:
    """`--preset NAME` and the repeatable `--set FIELD=VALUE`: written once, as the recipe's
    `training.preset` and `training.overrides` (orca_math.recipes.learn_eval.TrainingSection)."""
    from orca_math.cli.recipe_flags import add_recipe_flags
    from orca_math.recipes.learn_eval import TrainingSection

    add_recipe_flags(parser, TrainingSection, only=("preset", "overrides"))


# --------------------------------------------------------------------------- preset flags


def _json_object(raw: str) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ConfigError(f"{raw!r} is not a JSON object")
    return value


_METAVARS = {bool: "BOOL", int: "N", float: "X", str: "TEXT"}


@functools.cache
def _flag_fields() -> type:
    """The preset's fields as HfArgumentParser reads them: same names, types and help, no defaults.

    TrainingPreset itself cannot be handed over as it is: HfArgumentParser passes every metadata key
    to `add_argument` (``source`` is not one), would use the mistral-7b values as defaults (a flag
    left out must keep the --preset value, so these default to SUPPRESS and stay out of the
    namespace), and reads neither tuples (lists here, given as several words) nor dicts (JSON here).
    """
    from orca_math.learn.presets import PRESETS, TrainingPreset, get_preset

    types = typing.get_type_hints(TrainingPreset)  # bounds (Annotated) stripped: the preset checks them
    presets = {name: get_preset(name) for name in PRESETS}
    fields = []
    for f in dataclasses.fields(TrainingPreset):
        if f.name == "name":  # that is --preset
            continue
        kind = types[f.name]
        origin = typing.get_origin(kind)
        kind = list[str] if origin is tuple else _json_object if origin is dict else kind
        values = ", ".join(f"{name} {_shown(getattr(preset, f.name))}" for name, preset in presets.items())
        source = f"; source: {f.metadata['source']}" if f.metadata.get("source", "-") != "-" else ""
        help_text = f"{f.metadata['help']} [{values}{source}]".replace("%", "%%")
        metavar = "JSON" if origin is dict else "NAME" if origin is tuple else _METAVARS.get(kind, "VALUE")
        metadata = {"help": help_text} if typing.get_origin(kind) is typing.Literal else {"help": help_text, "metavar": metavar}
        fields.append((f.name, kind, dataclasses.field(default=argparse.SUPPRESS, metadata=metadata)))
    flags = dataclasses.make_dataclass("TrainingPresetFlags", fields)
    flags._argument_group_name = "preset fields (default: the --preset value)"  # HfArgumentParser's group hook
    return flags


def _shown(value: Any) -> str:
    return ",".join(value) if isinstance(value, tuple) else json.dumps(value) if isinstance(value, dict) else str(value)


def preset_flags() -> argparse.ArgumentParser | None:
    """A parent parser with one flag per preset field, or None without transformers (the train extra)."""
    if importlib.util.find_spec("transformers") is None:
        return None
    from transformers import HfArgumentParser

    parser = HfArgumentParser(_flag_fields(), add_help=False)
    for action in parser._actions:  # noqa: SLF001
        action.default = argparse.SUPPRESS  # HfArgumentParser gives list fields a default of None
    return parser


@functools.cache
def _flag_actions() -> dict[str, argparse.Action]:
    parser = preset_flags()
    return {} if parser is None else {a.dest: a for a in parser._actions}  # noqa: SLF001 - argparse keeps them there


def preset_from_args(name: str, overrides: list[str], flags: Mapping[str, Any] | None = None):
    """The named preset with ``FIELD=VALUE`` overrides and preset-field flags, each value read as its field's type.

    Raises:
        ConfigError: an override without '=', an unknown field, a value of the wrong type or outside its
            bounds, or a field given both as a flag and with --set.
    """
    from orca_math.learn.presets import get_preset, preset_fields

    defaults = get_preset(name)
    values: dict[str, Any] = {}
    for override in overrides:
        field, sep, raw = override.partition("=")
        field = field.strip()
        if not sep or not field:
            raise ConfigError(f"--set {override!r}: write FIELD=VALUE, e.g. --set max_steps=10.")
        if field not in preset_fields():
            get_preset(name, **{field: raw})  # raises the preset's own error, with a suggestion
        values[field] = _parse_value(field, raw.strip(), getattr(defaults, field))
    for field, value in (flags or {}).items():
        if field in values and values[field] != value:
            raise ConfigError(f"{field} is given twice, as --{field} and with --set {field}=...; give it once.")
        values[field] = value
    return get_preset(name, **values) if values else defaults


def _parse_value(field: str, raw: str, default: Any) -> Any:
    action = _flag_actions().get(field)
    try:
        if action is None or action.type is None:  # no transformers: the preset reads the text (lax pydantic)
            return raw
        if action.nargs == "+":
            return tuple(action.type(part.strip()) for part in raw.split(",") if part.strip())
        return action.type(raw)
    except (ValueError, TypeError, argparse.ArgumentTypeError):
        kind = "a JSON object" if isinstance(default, dict) else type(default).__name__
        raise ConfigError(f"--set {field}={raw}: {field} takes {kind} (default {default!r}).") from None


def preset_flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The preset fields given as flags on this command line (flags left out are not in `args`)."""
    return {name: getattr(args, name) for name in _flag_actions() if hasattr(args, name)}


# --------------------------------------------------------------------------- train


def run_train(args: argparse.Namespace) -> int:
    from orca_math.learn.formats import DatasetFormatError
    from orca_math.learn.trainers import get_trainer

    preset = preset_from_args(args.preset, args.overrides, preset_flag_values(args))
    check_out(args, "train", inputs=[args.data, args.model, args.ref_model])
    dataset = _training_data(args.data, args.kind)
    try:
        checkpoint = get_trainer(args.kind).train(dataset, args.out, preset, model=args.model, ref_model=args.ref_model)
    except DatasetFormatError as exc:
        raise user_error(exc) from None
    print(f"{args.kind.upper()} on {len(dataset)} rows with preset {preset.name}: saved {checkpoint}")
    return 0


def _training_data(source: str, kind: str):
    import datasets

    from orca_math.learn.formats import sft_dataset, validate_format

    path = Path(source)
    if (path / kind).is_dir() and _is_saved_dataset(path / kind):
        path = path / kind  # the output folder of `orca-math preferences`
    if _is_saved_dataset(path):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if "train" not in loaded:
                raise user_error(ValueError(f"{path} holds splits {', '.join(loaded)}; a 'train' split is needed."))
            loaded = loaded["train"]
        dataset = loaded if kind != "sft" or "question" not in loaded.column_names else sft_dataset(loaded)
    elif kind == "sft":
        from orca_math.data.seeds import read_seeds

        dataset = sft_dataset({"question": p.question, "answer": p.gold_solution or ""}
                              for p in read_seeds(source, require_answers=True))
    else:
        raise user_error(FileNotFoundError(
            f"{source} is not a saved {kind.upper()} dataset nor an `orca-math preferences` folder with {kind}/ inside."))
    try:
        validate_format(dataset, kind)  # type: ignore[arg-type]
    except ValueError as exc:
        raise user_error(exc) from None
    return dataset


def _is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and ((path / "state.json").exists() or (path / "dataset_dict.json").exists())


__all__ = [  # noqa: F822 (PRESET_CHOICES comes from the module __getattr__)
    "PRESET_CHOICES", "add_parser", "add_preset_options", "preset_flag_values", "preset_flags", "preset_from_args",
    "preset_names", "run_train",
]
