"""`orca-math doctor`: is this machine ready? Versions, the llama.cpp build, and an embedded-model check."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check that the embedded model runs on this CPU, and print versions and build flags",
        description="Load the embedded model in a child process and generate a few tokens, then print the Python, "
        "platform, CPU flags, package versions and llama.cpp build. A runtime built for another CPU crashes the "
        "child, not this command, and the report says how to rebuild it. Exits 1 when the model does not run.",
    )
    parser.set_defaults(handler=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    from orca_math.doctor import main

    return main([])
