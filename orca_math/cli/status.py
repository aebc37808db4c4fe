"""`orca-math status RUN_DIR`: each batch of a batch-mode run, its state and counts, as last seen.

It reads the run's batch state (``OUT/batches/state.sqlite``) and asks no provider anything, so
it needs no key and costs nothing; rerunning the command itself polls the provider and collects
what ended.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show the batches of a batch-mode run: their state and request counts",
        description="Show each batch a --batch run submitted (its provider id, state, requests and how they ended) and "
        "the run's requests by state, as last seen by the run. Rerun the run's own command to poll the provider "
        "and collect what has ended.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the output folder of a --batch run (or a run folder inside it)")
    parser.add_argument("--json", action="store_true", help="print the batches and counts as JSON")
    parser.set_defaults(handler=run_status)


def _ended(record) -> str:
    stored = (record.counts or {}).get("stored")
    if stored:
        parts = [f"{stored['succeeded']} succeeded"]
        if stored.get("retry"):
            parts.append(f"{stored['retry']} resent")
        if stored.get("failed"):
            parts.append(f"{stored['failed']} failed")
        if stored.get("missing"):
            parts.append(f"{stored['missing']} without result")
        return ", ".join(parts)
    counts = record.counts or {}
    if record.state in ("failed", "missing"):
        return record.reason or record.state
    done = counts.get("completed", counts.get("succeeded"))
    return f"{done} of {record.requests} done" if done is not None else ""


def run_status(args: argparse.Namespace) -> int:
    from orca_math.cli.messages import UserError
    from orca_math.engine.batch.state import BatchState, find_state

    path = find_state(Path(args.run_dir))
    if path is None:
        raise UserError(f"{args.run_dir} has no batch state: it is not the output folder of a --batch run.")
    state = BatchState(path)
    try:
        batches = state.batches()
        counts = state.counts()
    finally:
        state.close()
    if args.json:
        print(json.dumps({"batches": [vars(b) for b in batches], "requests": counts}, indent=2, default=str))
        return 0
    print(f"{'batch':<8}{'provider id':<30}{'backend':<11}{'model':<22}{'state':<11}{'requests':>9}  ended as / progress")
    for b in batches:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(b.updated))
        print(f"{b.id:<8}{(b.remote_id or '-')[:29]:<30}{b.backend:<11}{b.model[:21]:<22}{b.state:<11}{b.requests:>9}  "
              f"{_ended(b)} (updated {when})")
    print(f"\nrequests: {counts['succeeded']} answered, {counts['submitted']} in open batches, {counts['retry']} to resend, "
          f"{counts['failed']} failed after their attempts")
    still = [b for b in batches if b.open]
    if still or counts["retry"]:
        print(f"{len(still)} batch(es) still open: rerun the same command to poll them and go on (it resends what needs it).")
    else:
        print("every batch has ended; rerun the same command to finish the run if it paused.")
    return 0
