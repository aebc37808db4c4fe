"""Options shared by several subcommands."""

from __future__ import annotations

import argparse
from typing import Any


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default="local",
        help="model spec: 'local' (embedded SmolLM2-135M, offline), 'openai:<model>', 'azure:<deployment>', "
        "'hf:<path>', or an OpenAI-compatible server URL such as http://127.0.0.1:8000/v1 (default: local)",
    )
    parser.add_argument("--model-name", default=None, help="model name to request from a server URL (default: the first one it serves)")
    parser.add_argument("--base-url", default=None, help="base URL for an 'openai:<model>' spec (e.g. a vLLM server)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight at once (the adaptive limit's ceiling); default 16")
    parser.add_argument("--no-cache", action="store_true", help="don't keep a response cache in the run folder")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_seed_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="use only the first N seeds")
    parser.add_argument("--question-column", default=None, help="the seed column holding the problem (default: detected)")
    parser.add_argument("--answer-column", default=None, help="the seed column holding the answer (default: detected)")
    parser.add_argument("--id-column", default=None, help="the seed column holding a unique id (default: derived)")
    parser.add_argument("--split", default="train", help="split of an HF dataset (default train)")


def seed_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    options = {"question_column": args.question_column, "answer_column": args.answer_column, "id_column": args.id_column, "split": args.split}
    return {k: v for k, v in options.items() if v is not None and not (k == "split" and v == "train")}


def client_from_args(args: argparse.Namespace):
    from orca_math.models import load_model

    options: dict[str, Any] = {}
    if args.model_name:
        options["model"] = args.model_name
    if args.base_url:
        options["base_url"] = args.base_url
    return load_model(args.model, **options)
