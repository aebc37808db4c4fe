"""Child processes that never outlive their parent: `spawn` and `stop`.

Model servers (``vllm serve``, the llama.cpp server in tests) run as child processes. A child left
running after its parent dies holds a port and, for vLLM, gigabytes of GPU memory, so:

* `spawn` starts the child in its own process group, so `stop` can end the child and everything
  it started (vLLM's engine and worker processes) in one signal;
* on Linux the child also asks the kernel for SIGTERM when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``), which covers a parent that is SIGKILLed or crashes, where no
  ``finally`` runs.

    process = spawn(["vllm", "serve", "ckpt/m1"], stdout=log, stderr=subprocess.STDOUT)
    try:
        ...
    finally:
        stop(process)

The kernel delivers the death signal when the *thread* that spawned the child exits, so call
`spawn` from a long-lived thread (the main thread, or the event loop's), not from a short-lived
worker thread such as one of `asyncio.to_thread`'s.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

_PR_SET_PDEATHSIG = 1


def spawn(command: Sequence[str], *, death_signal: int = signal.SIGTERM, **popen_kwargs: Any) -> subprocess.Popen:
    """Start `command` in a new process group; on Linux it gets `death_signal` when this process dies.

    Args:
        command: the program and its arguments.
        death_signal: what the child gets when this process dies (SIGTERM lets a server shut down
            cleanly; SIGKILL for children that must not outlive it even when their shutdown hangs).
        **popen_kwargs: passed to `subprocess.Popen` (``stdout``, ``env``, ``cwd`` ...);
            ``start_new_session`` and ``preexec_fn`` are set here and may not be passed.

    Returns:
        The `subprocess.Popen` of the child, the leader of its own process group.
    """
    for reserved in ("start_new_session", "preexec_fn", "process_group"):
        if reserved in popen_kwargs:
            raise TypeError(f"spawn() sets {reserved} itself; do not pass it.")
    preexec = _die_with_parent(os.getpid(), death_signal) if sys.platform.startswith("linux") else None
    return subprocess.Popen(list(command), start_new_session=True, preexec_fn=preexec, **popen_kwargs)


def stop(process: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """End `process` and its whole process group: SIGTERM, wait up to `timeout` s, then SIGKILL.

    Safe to call more than once and on a process that already exited (its group may still hold
    grandchildren, which are ended too).

    Returns:
        The child's exit code (negative: the signal that ended it), or None if it could not be reaped.
    """
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    # Grandchildren may ignore or outlive the leader's SIGTERM; the group dies as a whole.
    _signal_group(process, signal.SIGKILL)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)  # the child leads its group: pgid == pid
    except (ProcessLookupError, PermissionError):
        if process.poll() is None:
            process.send_signal(signum)


def descendants(pid: int | None = None) -> set[int]:
    """The process ids of every living descendant of `pid` (default: this process), read from /proc.

    Empty where there is no /proc (macOS): callers use it to clean up after a library that started
    processes and failed before handing them over (Ray's node start-up).
    """
    parents: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return set()
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[0] != b"Z":  # a zombie is already dead
            parents[int(entry)] = int(fields[1])
    found: set[int] = set()
    frontier = {os.getpid() if pid is None else pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier and child not in found}
        found |= frontier
    return found


def end_processes(pids: set[int], timeout: float = 5.0) -> None:
    """SIGTERM `pids`, wait up to `timeout` s for them to go, then SIGKILL what is left (and reap our own)."""
    import time

    for signum in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, signum)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + timeout
        while pids and time.monotonic() < deadline:
            pids = {pid for pid in pids if _alive(pid)}
            time.sleep(0.05)
        if not pids:
            return


def _alive(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our child, reaped now
            return False
    except ChildProcessError:  # not our child (or reaped already): look it up
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
        except (OSError, IndexError):
            return False
    return True


def _die_with_parent(parent_pid: int, death_signal: int):
    def preexec() -> None:  # runs in the child between fork and exec: keep it to syscalls
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


__all__ = ["descendants", "end_processes", "spawn", "stop"]
