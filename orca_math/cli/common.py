"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from orca_math.cli.arguments import positive_float, positive_int
from orca_math.errors import ConfigError


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default="local",
        help="model spec: 'local' (embedded SmolLM2-135M, offline), 'openai:<model>', 'azure:<deployment>', "
        "'hf:<path>', or an OpenAI-compatible server URL such as http://127.0.0.1:8000/v1 (default: local)",
    )
    parser.add_argument("--model-name", default=None, help="model name to request from a server URL (default: the first one it serves)")
    parser.add_argument("--base-url", default=None, help="base URL for an 'openai:<model>' spec (e.g. a vLLM server)")
    parser.add_argument("--concurrency", type=positive_int, default=16, help="requests in flight at once (the adaptive limit's ceiling); default 16")
    parser.add_argument("--no-cache", action="store_true", help="don't keep a response cache in the output folder")
    parser.add_argument("--cache-file", default=None, metavar="PATH",
                        help="keep the response cache in this file instead of OUT/cache.sqlite (share one between runs; "
                        "does not change the run key)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_timeout_option(parser)


def add_timeout_option(parser: argparse.ArgumentParser) -> None:
    """``--timeout SECONDS``: the per-attempt limit of every model request (RetryPolicy.timeout)."""
    parser.add_argument("--timeout", type=positive_float, default=None, metavar="SECONDS",
                        help="give up on one attempt of a model request after SECONDS and retry it (default 300); "
                        "a server that never answers then fails within about SECONDS x 8 attempts")


def add_cost_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--budget-usd", type=positive_float, default=None, metavar="X",
                        help="stop cleanly before a call could take this run's spending over X USD (finished work is kept; needs a price)")
    parser.add_argument("--price", action="append", default=[], metavar="MODEL=IN,OUT",
                        help="USD per million input and output tokens for a model, e.g. my-model=0.5,1.5 (repeatable); "
                        "common OpenAI models have defaults")
    parser.add_argument("--dry-run", action="store_true", help="estimate calls, tokens and cost from the seeds and settings, call nothing, and exit")
    parser.add_argument("--completion-tokens", action="append", default=[], metavar="AGENT=N",
                        help="with --dry-run: typical reply length of an agent, e.g. teacher=400 (repeatable)")
    parser.add_argument("--rpm", type=positive_float, default=None, help="cap requests per minute (default: none; 429s still back off)")
    parser.add_argument("--tpm", type=positive_float, default=None, help="cap tokens per minute (default: none)")


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
        "concurrency": getattr(args, "concurrency", 16),
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
    if getattr(args, "no_cache", False):
        return False
    cache_file = getattr(args, "cache_file", None)
    return Path(cache_file).expanduser() if cache_file else True


def add_seed_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N", help="use only the first N seeds")
    parser.add_argument("--question-column", default=None, help="the seed column holding the problem (default: detected)")
    parser.add_argument("--answer-column", default=None, help="the seed column holding the answer (default: detected)")
    parser.add_argument("--id-column", default=None, help="the seed column holding a unique id (default: derived)")
    parser.add_argument("--split", default="train", help="split of an HF dataset (default train)")
    parser.add_argument("--max-seed-chars", type=positive_int, default=None, metavar="N",
                        help="refuse a seed whose question and answer hold more than N characters (default 50,000), "
                        "naming its line")


def seed_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    options = {"question_column": args.question_column, "answer_column": args.answer_column, "id_column": args.id_column,
               "split": args.split, "max_seed_chars": args.max_seed_chars}
    return {k: v for k, v in options.items() if v is not None and not (k == "split" and v == "train")}


def client_from_args(args: argparse.Namespace):
    options: dict[str, Any] = {}
    if args.model_name:
        options["model"] = args.model_name
    if args.base_url:
        options["base_url"] = args.base_url
    if getattr(args, "dry_run", False):
        return _dry_run_client(args.model, options)
    from orca_math.cli.scale_options import load_model_for

    # Remembered: --executor ray rebuilds the client in every worker from the spec and its options.
    client = load_model_for(args.model, args, **options)
    _OPENED.append(client)
    return client


#: Clients `client_from_args` built; `cli.main` closes them when the command ends, however it ends.
_OPENED: list[Any] = []


def managed_client_from_spec(spec: str, args: argparse.Namespace):
    """The engine's managed client over `load_model(spec)`, with the options of `args`; closed by `close_clients`."""
    from orca_math.engine.config import build_client

    client = build_client(spec, engine_from_args(args, cache=False))
    _OPENED.append(client)
    return client


def close_clients() -> None:
    """Close every client `client_from_args` built, and its HTTP sessions, on the loop it ran on.

    Unclosed, openai's aiohttp sessions print "Unclosed client session" and a connection dump at exit.
    """
    from orca_math._sync import run_sync

    while _OPENED:
        client = _OPENED.pop()
        try:
            run_sync(client.close())
        except Exception as exc:  # closing must never hide the command's own outcome
            logging.getLogger(__name__).debug("closing %s failed: %s", type(client).__name__, exc)


def _dry_run_client(spec: str, options: dict[str, Any]):
    """A dry run calls nothing, so a missing API key must not stop it: the placeholder is never sent."""
    from orca_math.models import load_model
    from orca_math.models.errors import MissingAPIKeyError

    try:
        return load_model(spec, **options)
    except MissingAPIKeyError:
        return load_model(spec, **{**options, "api_key": "dry-run-placeholder"})
