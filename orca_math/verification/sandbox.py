"""The program sandbox: run a model-written Python program and read the `answer` it assigns.

    >>> from orca_math.verification import run_program
    >>> run_program("apples = 84\\nanswer = apples / 2").value
    '42'

Programs are interpreted by asteval (no import, no `__import__`, no dunder attributes, no `open` here),
never by `exec`; `import math`, `from fractions import Fraction` and generator expressions, which
models often write, are rewritten to the names and lists they mean first. asteval's own docs say it cannot stop code that crashes or exhausts the interpreter,
so every program runs in a separate worker process (`_sandbox_worker`) that has locked itself down:

- memory: its address space is capped (`memory_mb`, 256 MiB by default), so a 10 GB list fails with
  MemoryError in the worker, not in your process;
- CPU: the kernel kills a worker that spends more than `timeout` seconds of CPU on one program;
- wall clock: the parent kills a worker that has not answered within `timeout` seconds;
- no new processes, no exec, no sockets, no file opens: `RLIMIT_NPROC`, and on Linux x86-64/arm64 a
  seccomp filter, since root ignores `RLIMIT_NPROC`; no file writes (`RLIMIT_FSIZE` 0);
- output: printing past `max_output_bytes` (64 KiB) is an error; a reply is read only up to a cap.

Starting Python for every program would cost tens of milliseconds each, so a `Sandbox` keeps a pool of
workers and reuses them. A worker that crashed, hit a limit or timed out is killed and replaced; one
that has served `jobs_per_worker` programs is retired, so one program's leftovers never pile up.
Each program gets a fresh asteval interpreter and symbol table, so programs never see each other.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from orca_math.answers.stated import canonical_value
from orca_math.errors import ConfigError, OrcaMathError

_WORKER_SCRIPT = Path(__file__).with_name("_sandbox_worker.py")
# Bytes a reply may add to the program's capped output (the JSON frame, the error, the answer).
_REPLY_OVERHEAD = 64 * 1024
# Significant digits kept from a float answer: a double holds 15 reliably, so 0.1 + 0.2 reads "0.3".
_FLOAT_DIGITS = 15


class SandboxUnavailableError(OrcaMathError):
    """The sandbox cannot run here: asteval is missing, or its worker process does not start."""

    stops_run = True


@dataclass(frozen=True, slots=True)
class ProgramResult:
    """What running one program gave.

    Attributes:
        value: the `answer` the program assigned, in the canonical form of a final answer ("42", "2.5", "5/2"),
            or None when there is no usable answer.
        error: why there is no value (one sentence), or None.
        output: what the program printed, at most the sandbox's output cap.
    """

    value: str | None
    error: str | None
    output: str = ""

    @property
    def ok(self) -> bool:
        """True when the program gave a value."""
        return self.error is None


class Sandbox:
    """A pool of locked-down worker processes that run programs with asteval.

    Thread-safe: up to `workers` programs run at once, the rest wait for a free worker. Close it (or
    use it as a context manager) to end its workers; they also end on their own when this process
    exits, because their stdin closes.

    Args:
        workers: how many programs may run at once (default: the number of CPUs, at most 4).
        memory_mb: the address-space limit of each worker, in MiB.
        max_output_bytes: how much a program may print.
        max_code_chars: the longest program accepted.
        jobs_per_worker: how many programs a worker runs before it is replaced.
        start_timeout: seconds a new worker may take to start.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        memory_mb: int = 256,
        max_output_bytes: int = 64 * 1024,
        max_code_chars: int = 20_000,
        jobs_per_worker: int = 1000,
        start_timeout: float = 30.0,
    ) -> None:
        workers = workers if workers is not None else max(1, min(4, os.cpu_count() or 1))
        for name, value in (
            ("workers", workers),
            ("memory_mb", memory_mb),
            ("max_output_bytes", max_output_bytes),
            ("max_code_chars", max_code_chars),
            ("jobs_per_worker", jobs_per_worker),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"Sandbox {name} must be a positive integer, not {value!r}.")
        if memory_mb < 64:
            raise ConfigError(f"Sandbox memory_mb must be at least 64 (Python itself needs it), not {memory_mb}.")
        self.workers = workers
        self.memory_mb = memory_mb
        self.max_output_bytes = max_output_bytes
        self.max_code_chars = max_code_chars
        self.jobs_per_worker = jobs_per_worker
        self.start_timeout = start_timeout
        self._slots = threading.BoundedSemaphore(workers)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._closed = False
        self._pid = os.getpid()

    def run(self, code: str, *, timeout: float = 2.0) -> ProgramResult:
        """Run `code` and read the `answer` it assigns.

        Args:
            code: the program (a math-oriented subset of Python; see docs/verification.md).
            timeout: seconds the program may run, both wall clock and CPU time.

        Returns:
            A `ProgramResult`: `.value` holds the canonical answer, or `.error` says why there is none
            (a refused construct, an exception, a limit hit, no `answer`, an answer that is no number).

        Raises:
            ConfigError: `code` is not a string or `timeout` is not a positive number.
            SandboxUnavailableError: asteval is not installed or the worker process cannot start.
        """
        if not isinstance(code, str):
            raise ConfigError(f"run_program expects the program as a str, got {type(code).__name__}.")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigError(f"run_program timeout must be a positive number of seconds, not {timeout!r}.")
        if len(code) > self.max_code_chars:
            return ProgramResult(None, f"the program is longer than {self.max_code_chars} characters")
        self._forget_workers_after_fork()
        with self._slots:
            worker = self._take_worker()
            try:
                reply = worker.ask(code, float(timeout))
            except BaseException:
                worker.kill()  # interrupted mid-program (Ctrl-C): its state is unknown
                with self._lock:
                    self._busy.discard(worker)
                raise
            keep = reply.get("healthy", False) and worker.jobs < self.jobs_per_worker
            with self._lock:
                self._busy.discard(worker)
                if keep and not self._closed:
                    self._idle.append(worker)
                    worker = None
            if worker is not None:
                worker.kill()
        return _result(reply)

    async def run_async(self, code: str, *, timeout: float = 2.0) -> ProgramResult:
        """`run` for async code: the wait happens in a thread, so the event loop keeps going."""
        return await asyncio.to_thread(self.run, code, timeout=timeout)

    def close(self) -> None:
        """End every worker. A closed sandbox refuses new programs."""
        self._forget_workers_after_fork()
        with self._lock:
            self._closed = True
            workers = self._idle + list(self._busy)
            self._idle, self._busy = [], set()
        for worker in workers:
            worker.kill()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _forget_workers_after_fork(self) -> None:
        # A forked child (multiprocessing, Ray) inherits the parent's workers and pipes: using them
        # would mix two processes' requests on one pipe, and ending them would end the parent's.
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.workers)
        self._idle, self._busy = [], set()

    def _take_worker(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise SandboxUnavailableError("This Sandbox is closed; create a new one to run programs.")
            while self._idle:
                worker = self._idle.pop()
                if worker.process.poll() is None:
                    self._busy.add(worker)
                    return worker
                worker.kill()  # died while idle (killed from outside): reap it, start another
        worker = _Worker(self._command(), self.start_timeout)  # started outside the lock: it takes ms
        with self._lock:
            if self._closed:
                worker.kill()
                raise SandboxUnavailableError("This Sandbox is closed; create a new one to run programs.")
            self._busy.add(worker)
        return worker

    def _command(self) -> list[str]:
        spec = importlib.util.find_spec("asteval")
        if spec is None or not spec.submodule_search_locations:
            raise SandboxUnavailableError(
                "Running programs needs asteval: pip install 'orca-math[quality]' (or pip install asteval)."
            )
        asteval_dir = str(Path(next(iter(spec.submodule_search_locations))).parent)
        # -I: the worker ignores PYTHON* variables, the user's site and the current folder.
        return [
            sys.executable, "-I", str(_WORKER_SCRIPT), asteval_dir,
            str(self.memory_mb), str(self.max_output_bytes),
        ]  # fmt: skip


class _Worker:
    """One worker process and the line-reading state of its reply pipe."""

    def __init__(self, command: list[str], start_timeout: float) -> None:
        self.jobs = 0
        self._buffer = b""
        self._limit = _REPLY_OVERHEAD
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                bufsize=0,
                cwd="/",
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"},
                start_new_session=True,  # Ctrl-C in a terminal stops the parent, which then ends us
            )
        except OSError as error:
            raise SandboxUnavailableError(f"The sandbox worker could not start: {error}.") from error
        try:
            line, why = self._read_line(time.monotonic() + start_timeout)
            hello = json.loads(line) if line is not None else {}
        except ValueError:
            hello = {"error": "it sent an unreadable first line"}
        except BaseException:  # Ctrl-C while it starts: leave no process behind
            self.kill()
            raise
        if hello.get("ready") is not True:
            self.kill()
            if why == "timeout":
                why = f"it did not answer within {start_timeout:g} s"
            elif why == "eof":
                why = f"it exited ({self.process.returncode})"
            reason = str(hello.get("error") or why or "it sent no ready line").rstrip(".")
            raise SandboxUnavailableError(f"The sandbox worker did not start: {reason}.")
        self._limit = None

    def ask(self, code: str, timeout: float) -> dict:
        """Send one program; the reply, or {"error": ...} when the worker failed (it is then unhealthy)."""
        self.jobs += 1
        request = json.dumps({"code": code, "cpu_s": timeout}).encode("ascii") + b"\n"
        try:
            self.process.stdin.write(request)
            self.process.stdin.flush()
        except OSError:
            return {"error": self._death_reason(timeout), "healthy": False}
        line, why = self._read_line(time.monotonic() + timeout)
        if line is None:
            if why == "timeout":
                return {"error": f"the program ran longer than {timeout:g} s", "healthy": False}
            if why == "eof":
                return {"error": self._death_reason(timeout), "healthy": False}
            return {"error": why, "healthy": False}
        try:
            reply = json.loads(line)
        except ValueError:
            return {"error": "the sandbox worker sent an unreadable reply", "healthy": False}
        reply["healthy"] = not reply.get("recycle", False)
        return reply

    def _read_line(self, deadline: float) -> tuple[bytes | None, str | None]:
        """The next reply line, or (None, "timeout" | "eof" | reason)."""
        limit = self._limit or _REPLY_OVERHEAD + 4 * 1024 * 1024
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            if len(self._buffer) > limit:
                return None, "the sandbox worker's reply was larger than its cap"
            left = deadline - time.monotonic()
            if left <= 0:
                return None, "timeout"
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return None, "eof"
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line, None

    def _death_reason(self, timeout: float) -> str:
        try:
            code = self.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return "the sandbox worker stopped answering"
        if code == -signal.SIGXCPU:
            return f"the program used more than {timeout:g} s of CPU time"
        if code < 0:
            return f"the sandbox worker died ({signal.Signals(-code).name})"
        return f"the sandbox worker exited with status {code}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.process.wait()


def _result(reply: dict) -> ProgramResult:
    output = reply.get("output") or ""
    if reply.get("error"):
        return ProgramResult(None, str(reply["error"]), output)
    value, error = answer_text(reply.get("answer") or {})
    return ProgramResult(value, error, output)


def answer_text(tagged: dict) -> tuple[str | None, str | None]:
    """The canonical text of a worker's tagged answer, or (None, why it is not a number).

    The text is what `canonical_value` gives a stated final answer, so a program's result and a
    solution's final answer compare as equal strings when they are the same value.
    """
    if "int" in tagged:
        return str(int(tagged["int"])), None
    if "float" in tagged:
        number = float(tagged["float"])
        if number != number or number in (float("inf"), float("-inf")):
            return None, f"the answer is {tagged['float']}, not a finite number"
        return canonical_value(format(Decimal(format(number, f".{_FLOAT_DIGITS}g")), "f")), None
    if "fraction" in tagged:
        numerator, denominator = tagged["fraction"]
        return canonical_value(f"{numerator}/{denominator}"), None
    if "str" in tagged:
        text = tagged["str"]
        value = canonical_value(text)
        if value is None:
            return None, f"the answer is the text {text[:80]!r}, not a number"
        return value, None
    kind = tagged.get("type", "unknown")
    if tagged.get("too_long"):
        return None, f"the answer ({kind}) is too long to be a final answer"
    return None, f"the answer is a {kind}, not a number"


_DEFAULT: Sandbox | None = None
_DEFAULT_LOCK = threading.Lock()


def default_sandbox() -> Sandbox:
    """The process-wide sandbox that `run_program` uses, created on first use and closed at exit."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None or _DEFAULT._closed:
            _DEFAULT = Sandbox()
            atexit.register(_DEFAULT.close)
        return _DEFAULT


def run_program(code: str, *, timeout: float = 2.0) -> ProgramResult:
    """Run a program in the shared sandbox and read its `answer` (see `Sandbox.run`).

        >>> run_program("answer = 84 / 2").value
        '42'
        >>> run_program("import os").error
        'NotImplementedError: Import not supported'
    """
    return default_sandbox().run(code, timeout=timeout)


async def run_program_async(code: str, *, timeout: float = 2.0) -> ProgramResult:
    """`run_program` for async code."""
    return await default_sandbox().run_async(code, timeout=timeout)
