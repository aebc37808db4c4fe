"""Calling math_verify safely from any thread.

math_verify bounds its work with `signal.alarm`, which only works in the main thread of the main
interpreter; from any other thread its timeouts raise ValueError. So:

- in the main thread (including inside a running asyncio loop) we call it directly, with its own timeouts;
- from any other thread we send the job to a helper process (`orca_math.answers._mathverify_worker`)
  that runs it in its own main thread, where math_verify's timeouts work, and we wait with a wall-clock
  limit of our own. A helper that outlives that limit is killed; the next call starts a fresh one.

The helper is a plain subprocess rather than a multiprocessing pool on purpose: the "spawn" start method
re-imports the user's `__main__` (breaking scripts without an `if __name__ == "__main__"` guard), and "fork"
is unsafe in a process that runs threads.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

# Seconds math_verify may spend parsing one side, and comparing.
MATH_VERIFY_TIMEOUT_S = 5
# Extra wall-clock time the helper gets on its first job (starting Python and importing sympy).
_HELPER_START_GRACE_S = 60.0


@dataclass(frozen=True, slots=True)
class MathVerifyOutcome:
    """What math_verify decided: `equal` is None when it could not read one side or ran out of time."""

    equal: bool | None
    reason: str
    gold: str | None
    predicted: str | None


def verify_with_math_verify(
    gold: str, predicted: str, timeout_s: int = MATH_VERIFY_TIMEOUT_S
) -> MathVerifyOutcome:
    """Parse both answers with math_verify and compare them, from whatever thread this is called."""
    if threading.current_thread() is threading.main_thread():
        return _verify_job(gold, predicted, timeout_s)
    return _HELPER.ask(gold, predicted, timeout_s)


# The helper keeps stdout for its replies alone: anything printed while importing goes to stderr.
_HELPER_BOOT = (
    "import sys; replies = sys.stdout; sys.stdout = sys.stderr; "
    "from orca_math.answers._mathverify_worker import main; main(replies)"
)


class _Helper:
    """One long-lived helper process, used by one thread at a time."""

    def __init__(
        self,
        command: list[str] | None = None,
        start_grace_s: float = _HELPER_START_GRACE_S,
        margin_s: float = 5.0,
    ) -> None:
        self._command = command or [sys.executable, "-c", _HELPER_BOOT]
        self._start_grace_s = start_grace_s
        self._margin_s = margin_s
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._fresh = True

    def ask(self, gold: str, predicted: str, timeout_s: int) -> MathVerifyOutcome:
        with self._lock:
            try:
                process = self._ensure_started()
                process.stdin.write(
                    json.dumps({"gold": gold, "predicted": predicted, "timeout_s": timeout_s}) + "\n"
                )
                process.stdin.flush()
            except OSError as error:
                self._stop()
                return MathVerifyOutcome(None, f"math_verify helper process failed: {error}", None, None)
            limit = 3 * timeout_s + self._margin_s + (self._start_grace_s if self._fresh else 0)
            try:
                line = self._replies.get(timeout=limit)
            except queue.Empty:
                self._stop()
                return MathVerifyOutcome(None, f"math_verify did not answer within {limit:.0f} s", None, None)
            if line is None:
                self._stop()
                return MathVerifyOutcome(None, "math_verify helper process exited", None, None)
            self._fresh = False
            try:
                return MathVerifyOutcome(**json.loads(line))
            except (ValueError, TypeError):
                self._stop()
                return MathVerifyOutcome(None, "math_verify helper sent an unreadable reply", None, None)

    def _ensure_started(self) -> subprocess.Popen[str]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            self._command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            env=env,
        )
        self._replies = queue.Queue()
        self._fresh = True
        threading.Thread(
            target=_pump, args=(self._process, self._replies), daemon=True, name="math-verify-reader"
        ).start()
        return self._process

    def _stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()  # a stuck sympy call never returns; only this helper is ended
            self._process.wait()
        self._process = None


def _pump(process: subprocess.Popen[str], replies: queue.Queue[str | None]) -> None:
    """Move the helper's reply lines into a queue, so the caller can wait with a timeout on any OS."""
    for line in process.stdout:
        replies.put(line)
    replies.put(None)


_HELPER = _Helper()


def outcome_to_json(outcome: MathVerifyOutcome) -> str:
    """One reply line of the helper process."""
    return json.dumps(asdict(outcome))


_BARE_PI = re.compile(r"(?<![\\a-zA-Z])pi\b")


def _as_latex(text: str) -> str:
    """Wrap a bare answer in $...$ so math_verify's LaTeX reader sees it ("sqrt(3)/2", "\\frac{1}{2}")."""
    if "$" in text or "\\(" in text or "\\[" in text or "\\boxed" in text:
        return text
    return "$" + _BARE_PI.sub(r"\\pi", text) + "$"


class _TimedOut(Exception):
    pass


def _parse_side(text: str, timeout_s: int):
    from math_verify import parse
    from math_verify.errors import TimeoutException
    from sympy import Basic, MatrixBase

    for candidate in dict.fromkeys((_as_latex(text), text)):
        try:
            parsed = parse(candidate, parsing_timeout=timeout_s, raise_on_error=True)
        except TimeoutException as error:
            raise _TimedOut from error
        except Exception:  # noqa: BLE001 - an unreadable candidate; try the next form
            continue
        expressions = [item for item in parsed if isinstance(item, (Basic, MatrixBase))]
        if expressions:
            return expressions
    return []


def _verify_job(gold: str, predicted: str, timeout_s: int) -> MathVerifyOutcome:
    """Runs in the main thread of this or a worker process; returns only picklable values."""
    try:
        return _verify_unguarded(gold, predicted, timeout_s)
    except _TimedOut:
        return MathVerifyOutcome(None, f"math_verify timed out after {timeout_s} s", None, None)


def _verify_unguarded(gold: str, predicted: str, timeout_s: int) -> MathVerifyOutcome:
    from math_verify import verify
    from math_verify.errors import TimeoutException

    gold_parsed = _parse_side(gold, timeout_s)
    if not gold_parsed:
        return MathVerifyOutcome(None, f"math_verify could not read the gold answer {gold!r}", None, None)
    predicted_parsed = _parse_side(predicted, timeout_s)
    if not predicted_parsed:
        return MathVerifyOutcome(
            None, f"math_verify could not read the predicted answer {predicted!r}", str(gold_parsed[0]), None
        )
    try:
        # raise_on_error: a timeout must not read as "not equivalent".
        equal = verify(gold_parsed, predicted_parsed, timeout_seconds=timeout_s, raise_on_error=True)
    except TimeoutException as error:
        raise _TimedOut from error
    except Exception as error:  # noqa: BLE001 - sympy raises many types on odd input
        return MathVerifyOutcome(
            None, f"math_verify failed: {type(error).__name__}", str(gold_parsed[0]), str(predicted_parsed[0])
        )
    return MathVerifyOutcome(
        bool(equal),
        "math_verify: " + ("equivalent" if equal else "not equivalent"),
        str(gold_parsed[0]),
        str(predicted_parsed[0]),
    )
