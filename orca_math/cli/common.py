"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from orca_math.errors import ConfigError


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The model and how it is called: written once, as the recipe's model and engine fields."""
    from orca_math.cli.recipe_flags import add_recipe_flags
    from orca_math.recipes.common import EngineSection, ModelSection

    add_recipe_flags(parser, ModelSection)
    add_recipe_flags(parser, EngineSection, only=("concurrency", "cache", "cache_file"))
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_timeout_option(parser)


def add_timeout_option(parser: argparse.ArgumentParser) -> None:
    """``--timeout SECONDS``: the per-attempt limit of every model request (RetryPolicy.timeout)."""
    from orca_math.cli.recipe_flags import add_recipe_flags
    from orca_math.recipes.common import EngineSection

    add_recipe_flags(parser, EngineSection, only=("timeout",))


def add_cost_options(parser: argparse.ArgumentParser) -> None:
    """Budget, prices and rate caps (the recipe's cost and engine fields), and --dry-run."""
    from orca_math.cli.recipe_flags import add_recipe_flags
    from orca_math.recipes.common import CostSection, EngineSection

    add_recipe_flags(parser, CostSection, only=("budget_usd", "prices"))
    parser.add_argument("--dry-run", action="store_true", help="estimate calls, tokens and cost from the seeds and settings, call nothing, and exit")
    add_recipe_flags(parser, CostSection, only=("completion_tokens",))
    add_recipe_flags(parser, EngineSection, only=("rpm", "tpm"))


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise ConfigError(f"{option} takes NAME=VALUE, not {value!r}")
        pairs[name.strip()] = rest.strip()
    return pairs


def prices_from_args(args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    prices = {}
    for name, value in _pairs(args.price, "--price").items():
        try:
            input_usd, output_usd = (float(part) for part in value.split(","))
        except ValueError:
            raise ConfigError(f"--price {name}= needs two numbers, input and output USD per million tokens, e.g. {name}=0.5,1.5") from None
        prices[name] = (input_usd, output_usd)
    return prices


def completion_tokens_from_args(args: argparse.Namespace) -> dict[str, int]:
    try:
        return {name: int(value) for name, value in _pairs(args.completion_tokens, "--completion-tokens").items()}
    except ValueError as exc:
        raise ConfigError(f"--completion-tokens takes AGENT=N with a whole number: {exc}") from None


def engine_from_args(args: argparse.Namespace, **overrides: Any):
    """The `EngineConfig` the shared options ask for (concurrency, cache, progress, budget, prices,
    rate caps, timeout); `overrides` set fields the command decides itself."""
    from orca_math.engine.config import EngineConfig

    values: dict[str, Any] = {
        "concurrency": getattr(args, "concurrency", None) or 16,  # learn's --concurrency defaults to None (its own)
        "cache": _cache_from_args(args),
        "progress": not getattr(args, "no_progress", False),
        "budget_usd": getattr(args, "budget_usd", None),
        "prices": prices_from_args(args) if hasattr(args, "price") else {},
        "requests_per_minute": getattr(args, "rpm", None),
        "tokens_per_minute": getattr(args, "tpm", None),
        "timeout": getattr(args, "timeout", None),
    }
    return EngineConfig.of(**{**values, **overrides})


def _cache_from_args(args: argparse.Namespace) -> bool | Path:
    """False with --no-cache, the --cache-file path, else True (OUT/cache.sqlite)."""
    from orca_math.recipes.common import cache_setting

    return cache_setting(not getattr(args, "no_cache", False), getattr(args, "cache_file", None))


def add_seed_options(parser: argparse.ArgumentParser) -> None:
    """How seeds are read (the recipe's seed fields but the path, which each command names itself)."""
    from orca_math.cli.recipe_flags import add_recipe_flags
    from orca_math.recipes.common import SeedSection

    add_recipe_flags(parser, SeedSection, only=[name for name in SeedSection.model_fields if name != "path"])


def seed_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    options = {"question_column": args.question_column, "answer_column": args.answer_column, "id_column": args.id_column,
               "split": args.split, "max_seed_chars": args.max_seed_chars}
    return {k: v for k, v in options.items() if v is not None and not (k == "split" and v == "train")}


def model_from_args(args: argparse.Namespace):
    """The `ModelRef` that ``--model``, ``--model-name`` and ``--base-url`` name; no client is built here.

    The engine builds the client where calls are made (this process, or each Ray worker); see
    `orca_math.models.ref` for the whole walk. A dry run builds one only to name the model, and
    `Pipeline.estimate` lets it go without an API key, since nothing is sent.
    """
    from orca_math.recipes.common import model_ref

    return model_ref(args.model, args.model_name, args.base_url)


#: Clients the command line built itself (`managed_client_from_spec`); `cli.main` closes them when the
#: command ends, however it ends.
_OPENED: list[Any] = []


def managed_client_from_spec(spec: str, args: argparse.Namespace, *, cache: Any = None):
    """The engine's managed client over `load_model(spec)`, with the options of `args` and the `ResponseCache`
    `cache` (None: none); closed by `close_clients`."""
    from orca_math.engine.config import build_client

    client = build_client(spec, engine_from_args(args, cache=False), cache=cache)
    _OPENED.append(client)
    return client


def close_clients() -> None:
    """Close every client `managed_client_from_spec` built, and its HTTP sessions, on the loop it ran on.

    Unclosed, openai's aiohttp sessions print "Unclosed client session" and a connection dump at exit.
    """
    from orca_math._sync import run_sync

    while _OPENED:
        client = _OPENED.pop()
        try:
            run_sync(client.close())
        except Exception as exc:  # closing must never hide the command's own outcome
            logging.getLogger(__name__).debug("closing %s failed: %s", type(client).__name__, exc)
