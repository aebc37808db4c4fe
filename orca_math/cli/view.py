"""`orca-math view RUN_DIR`: serve the local web viewer of a run's funnel, rows, lineage and loop."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "view",
        help="open a local web viewer of a run: funnel, rows, each problem's lineage, learning-loop iterations",
        description="Serve a read-only web viewer of an output folder (generation, evaluation or learning loop) on "
        "127.0.0.1 and print its URL: the funnel per stage, a searchable table of every problem, each problem's "
        "lineage through the agents, the learning loop's iterations, and comparisons. It refreshes while a run "
        "writes. Needs the view extra: pip install \"orca-math[view]\".",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="an output folder (or OUT/runs/<key>), an evaluation folder or a learning-loop folder")
    parser.add_argument("--compare", action="append", default=[], metavar="DIR",
                        help="another folder to compare with RUN_DIR side by side (repeatable)")
    parser.add_argument("--port", type=int, default=None, metavar="P", help="the port to listen on (default: 8765; 0 picks a free one)")
    parser.add_argument("--host", default=None, metavar="H",
                        help="the address to listen on (default: 127.0.0.1); any other address warns and requires a token printed at start")
    parser.set_defaults(handler=run_view)


def run_view(args: argparse.Namespace) -> int:
    from orca_math.cli.messages import UserError
    from orca_math.view import DEFAULT_HOST, DEFAULT_PORT, serve

    port = DEFAULT_PORT if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port}: use a port between 1 and 65535, or 0 for any free one.")
    try:
        serve([args.run_dir, *args.compare], host=args.host or DEFAULT_HOST, port=port)
    except KeyboardInterrupt:
        pass
    return 0
