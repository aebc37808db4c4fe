"""Helper process for math_verify calls made outside the main thread (see `_mathverify`).

Reads one JSON request a line on stdin ({"gold", "predicted", "timeout_s"}) and writes one JSON outcome
a line on stdout. Jobs run in this process's main thread, so math_verify's signal-based timeouts work.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TextIO

from orca_math.answers._mathverify import MathVerifyOutcome, _verify_job, outcome_to_json


def main(replies: TextIO | None = None) -> None:
    """Serve requests until stdin closes, writing replies to `replies` (default: stdout)."""
    replies = replies or sys.stdout
    logging.disable(logging.WARNING)  # math_verify logs its timeouts; the outcome already says so
    for line in sys.stdin:
        try:
            request = json.loads(line)
            outcome = _verify_job(str(request["gold"]), str(request["predicted"]), int(request["timeout_s"]))
        except Exception as error:  # noqa: BLE001 - always answer, or the caller waits for nothing
            outcome = MathVerifyOutcome(
                None, f"math_verify helper failed: {type(error).__name__}", None, None
            )
        replies.write(outcome_to_json(outcome) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
