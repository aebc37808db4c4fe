"""The parts of the ``vllm:`` client that touch vLLM itself: starting the engine, and the thread
that feeds it.

`EngineLoop` owns the engine: one thread adds requests and runs decoding steps, because vLLM's
`LLMEngine` is not safe to call from two threads. Callers hand it requests from any thread or
event loop and wait on a `concurrent.futures.Future`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import json
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orca_math.models.errors import BadRequestError, ModelError, ModelSpecError

INSTALL_HINT = ("install vLLM: pip install 'orca-math[vllm]' on a GPU machine, or "
                "bash scripts/setup_vllm.sh <venv> on a CPU-only one")
_MEMORY = re.compile(r"out of memory|OutOfMemory|KV cache|cache blocks|not enough memory|insufficient memory|"
                     r"larger than the maximum number of tokens", re.IGNORECASE)
_ERROR_LINE = re.compile(r"^\s*(?:\w+\.)*\w*(?:Error|Exception)\b:?\s*(.*)$")
_env_lock = threading.Lock()  # the environment is process-wide: one engine starts at a time
_engine_count = 0


class EngineDeadError(ModelError):
    """The vLLM engine stopped (it crashed, ran out of memory, or was closed); make a new client."""


def start_engine(source: str, options: Mapping[str, Any], kv_cache_space_gib: int | None,
                 log_dir: str | Path | None) -> tuple[Any, Path, bool]:
    """Build `vllm.LLM(source, **options)` with a log file of its own; returns (llm, log path, on CPU).

    Raises:
        ModelSpecError: vLLM is missing, an option is unknown, or the engine could not start
            (the message names the reason, and the option to lower when memory ran out).
    """
    global _engine_count
    try:
        from vllm import LLM
        from vllm.platforms import current_platform
    except ImportError as exc:
        raise ModelSpecError(f"The vllm: model needs vLLM ({exc.name or 'vllm'} is not importable): "
                             f"{INSTALL_HINT}.") from None
    on_cpu = bool(current_platform.is_cpu())
    opts = {k: v for k, v in options.items() if v is not None}
    opts.setdefault("dtype", "float32" if on_cpu else "auto")
    opts.setdefault("enforce_eager", on_cpu)
    folder = Path(log_dir or Path.home() / ".cache" / "orca-math" / "vllm-logs")
    folder.mkdir(parents=True, exist_ok=True)
    with _env_lock:
        _engine_count += 1
        log_path = folder / f"engine-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{_engine_count}.log"
        env: dict[str, str] = {}
        if "VLLM_LOGGING_CONFIG_PATH" not in os.environ:  # a config of the user's own wins
            env["VLLM_LOGGING_CONFIG_PATH"] = str(_logging_config(log_path))
        if kv_cache_space_gib is not None:
            if on_cpu:
                env["VLLM_CPU_KVCACHE_SPACE"] = str(int(kv_cache_space_gib))
            else:
                opts.setdefault("kv_cache_memory_bytes", int(kv_cache_space_gib * 2**30))
        handler = logging.FileHandler(log_path, encoding="utf-8")  # this process's own vLLM log lines
        logging.getLogger("vllm").addHandler(handler)
        try:
            with _environment(env):  # the engine's processes read it when they start, inside LLM()
                llm = LLM(model=source, **opts)
        except TypeError as exc:
            if "unexpected keyword" in str(exc):
                raise ModelSpecError(f"Unknown vLLM engine option: {exc}; see vllm.EngineArgs for the fields.") from None
            raise engine_error(exc, source, opts, log_path, on_cpu) from None
        except Exception as exc:
            raise engine_error(exc, source, opts, log_path, on_cpu) from None
        finally:
            logging.getLogger("vllm").removeHandler(handler)
            handler.close()
    return llm, log_path, on_cpu


def engine_error(exc: BaseException, source: str, options: Mapping[str, Any], log_path: Path | None,
                 on_cpu: bool) -> ModelSpecError:
    """One sentence for an engine that failed to start: the reason, and what to lower if memory ran out.

    vLLM's own exception often only says "see root cause above" (the cause happened in its engine
    process), so the reason is taken from the last error line of the engine's log when needed.
    """
    text = " ".join(str(exc).split())
    reason = text
    if not text or "root cause" in text or "initialization failed" in text:
        reason = _last_error(log_tail(log_path, 80)) or text or type(exc).__name__
    where = f" (engine log: {log_path})" if log_path else ""
    if _MEMORY.search(reason) or _MEMORY.search(text) or type(exc).__name__ == "OutOfMemoryError":
        length = options.get("max_model_len", "the model's own")
        if on_cpu:
            fix = (f"lower max_model_len (now {length}) or give the KV cache more memory with "
                   "kv_cache_space_gib (VLLM_CPU_KVCACHE_SPACE)")
        else:
            fix = (f"lower max_model_len (now {length}) or gpu_memory_utilization "
                   f"(now {options.get('gpu_memory_utilization', 0.92)}), or raise tensor_parallel_size")
        return ModelSpecError(f"vLLM ran out of memory starting {source}: {reason.rstrip('.')}; {fix}{where}.")
    return ModelSpecError(f"vLLM could not load {source}: {reason.rstrip('.')}{where}.")


def log_tail(path: Path | None, lines: int = 20) -> str:
    """The last `lines` lines of a log file ("" when there is none)."""
    if path is None or not Path(path).exists():
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 64 * 1024))
        text = handle.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def _last_error(log: str) -> str:
    for line in reversed(log.splitlines()):
        match = _ERROR_LINE.match(line.split("] ", 1)[-1])
        if match and match.group(1).strip():
            return line.split("] ", 1)[-1].strip()
    return ""


def _logging_config(log_path: Path) -> Path:
    """A vLLM logging config (VLLM_LOGGING_CONFIG_PATH) that also writes to `log_path`.

    The engine core and workers are new processes: they configure logging from this file, so their
    errors (a model that fails to load, a KV cache that does not fit) land where we can quote them.
    """
    from vllm.logger import DEFAULT_LOGGING_CONFIG

    config = copy.deepcopy(DEFAULT_LOGGING_CONFIG)
    config["handlers"]["orca_math_file"] = {"class": "logging.FileHandler", "filename": str(log_path),
                                            "formatter": "vllm", "level": "INFO", "encoding": "utf-8"}
    config["loggers"]["vllm"]["handlers"] = [*config["loggers"]["vllm"]["handlers"], "orca_math_file"]
    path = log_path.with_suffix(".logging.json")
    path.write_text(json.dumps(config, default=str), encoding="utf-8")
    return path


@contextlib.contextmanager
def _environment(values: Mapping[str, str]):
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class EngineRequest:
    """One request for the engine thread: its prompt, parameters and the future of its output."""

    id: str
    prompt_ids: list[int]
    params: Any
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    engine_id: str | None = None


class EngineLoop:
    """The thread that owns a `vllm.LLM`: it adds waiting requests and steps the engine.

    Requests that find the engine idle wait `batch_wait_s` for company (until no new one came for
    that long, at most 20 times as long), then go in together; requests that come while it runs
    join at the next step. `stats` counts requests, batches (groups added at once), the largest
    batch, the peak number of requests running together, and decoding steps.
    """

    def __init__(self, llm: Any, *, batch_wait_s: float, log_path: Path | None) -> None:
        self._llm = llm
        self._batch_wait_s = max(0.0, float(batch_wait_s))
        self._log_path = log_path
        self._cv = threading.Condition()
        self._pending: list[EngineRequest] = []
        self._aborts: list[EngineRequest] = []
        self._running: dict[str, EngineRequest] = {}
        self._last_submit = 0.0
        self._stopping = False
        self._error: ModelError | None = None
        self.stats = {"requests": 0, "batches": 0, "largest_batch": 0, "peak_running": 0, "steps": 0}
        self._thread = threading.Thread(target=self._run, name="orca-math-vllm-engine", daemon=True)
        self._thread.start()

    def submit(self, request_id: str, prompt_ids: list[int], params: Any) -> EngineRequest:
        """Queue one request; its `future` gets the `vllm.RequestOutput` (all `n` samples)."""
        request = EngineRequest(request_id, list(prompt_ids), params)
        with self._cv:
            if self._error is not None:
                raise self._error
            if self._stopping:
                raise EngineDeadError("The vLLM client was closed; create a new one.")
            self._pending.append(request)
            self._last_submit = time.monotonic()
            self.stats["requests"] += 1
            self._cv.notify()
        return request

    def abort(self, request: EngineRequest) -> None:
        """Stop generating `request` (its caller gave up on it)."""
        with self._cv:
            self._aborts.append(request)
            self._cv.notify()

    def stop(self) -> None:
        """Fail what is still waiting or running, and end the thread; idempotent."""
        with self._cv:
            self._stopping = True
            self._cv.notify()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        batch: list[EngineRequest] = []
        try:
            while True:
                with self._cv:
                    while not (self._pending or self._aborts or self._running or self._stopping):
                        self._cv.wait()
                    if self._stopping:
                        break
                    if self._pending and not self._running:
                        self._gather()
                    batch, self._pending = self._pending, []
                    aborts, self._aborts = self._aborts, []
                self._abort(aborts)
                self._add(batch)
                if self._running:
                    self._step()
        except BaseException as exc:  # the engine died: every waiting caller must hear of it
            tail = log_tail(self._log_path, 15)
            error = EngineDeadError(f"The vLLM engine failed: {' '.join(str(exc).split()) or type(exc).__name__}."
                                    + (f" Its last log lines:\n{tail}" if tail else ""))
            with self._cv:
                self._error = error
        finally:
            closed = self._error or EngineDeadError("The vLLM client was closed while this request ran.")
            with self._cv:
                leftover, self._pending = [*batch, *self._pending, *self._running.values()], []
                self._running.clear()
            for request in leftover:
                _settle(request.future, error=closed)

    def _gather(self) -> None:
        """Called with the lock held, on an idle engine: wait briefly so concurrent calls batch."""
        deadline = time.monotonic() + 20 * self._batch_wait_s
        while not self._stopping:
            quiet_until = self._last_submit + self._batch_wait_s
            now = time.monotonic()
            if now >= quiet_until or now >= deadline:
                return
            self._cv.wait(min(quiet_until, deadline) - now)

    def _add(self, batch: list[EngineRequest]) -> None:
        added = 0
        for request in batch:
            if request.future.cancelled():
                continue
            try:
                ids = self._llm.enqueue([{"prompt_token_ids": request.prompt_ids}], [request.params], use_tqdm=False)
            except Exception as exc:  # noqa: BLE001 -- this request only: a prompt too long, bad parameters
                _settle(request.future, error=BadRequestError(f"vLLM refused the request: {' '.join(str(exc).split())}"))
                continue
            request.engine_id = ids[0]
            self._running[ids[0]] = request
            self._running[ids[0].rsplit("-", 1)[0]] = request  # outputs carry the id without vLLM's suffix
            added += 1
        if added:
            self.stats["batches"] += 1
            self.stats["largest_batch"] = max(self.stats["largest_batch"], added)
            self.stats["peak_running"] = max(self.stats["peak_running"], self._llm.llm_engine.get_num_unfinished_requests())

    def _step(self) -> None:
        engine = self._llm.llm_engine
        outputs = engine.step()
        self.stats["steps"] += 1
        for output in outputs:
            if not output.finished:
                continue
            request = self._forget(output.request_id)
            if request is not None:
                _settle(request.future, result=output)
        if not engine.has_unfinished_requests():
            self._running.clear()  # nothing is left in the engine; drop any stale ids

    def _abort(self, requests: list[EngineRequest]) -> None:
        for request in requests:
            if request.engine_id is not None and self._forget(request.engine_id) is not None:
                self._llm.llm_engine.abort_request([request.engine_id], internal=True)

    def _forget(self, request_id: str) -> EngineRequest | None:
        request = self._running.pop(request_id, None)
        if request is not None and request.engine_id is not None:
            for key in (request.engine_id, request.engine_id.rsplit("-", 1)[0]):
                self._running.pop(key, None)
        return request


def _settle(future: concurrent.futures.Future, *, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():
        return
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
