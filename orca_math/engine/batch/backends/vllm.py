"""Local ``vllm run-batch``: the OpenAI batch file, run offline on the user's own GPUs.

``vllm run-batch -i in.jsonl -o out.jsonl --model M`` reads the same input lines as OpenAI's
batch API and writes the same output lines. The job runs as a process of its own session: like a
provider's batch, it goes on when the driver exits (``--no-wait``) and a rerun polls it by its
process id, then reads its output file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orca_math.engine.batch.backends.base import BatchMissingError, RemoteStatus
from orca_math.engine.batch.backends.openai import OpenAIBatchBackend
from orca_math.engine.batch.state import BatchRecord
from orca_math.errors import ConfigError


class VLLMRunBatchBackend(OpenAIBatchBackend):
    """Runs each batch through ``vllm run-batch`` on this machine.

    Args:
        inner: the model's client (its request builder makes the bodies).
        model: the model name written into each body.
        command: the program and leading arguments (default ``vllm run-batch``).
        vllm_model: the ``--model`` argument (a checkpoint folder or Hub id); defaults to `model`.
        extra_args: more arguments for ``vllm run-batch`` (``--tensor-parallel-size 2`` ...).
    """

    name = "vllm"
    max_requests = 1_000_000
    max_bytes = 1 << 40

    def __init__(self, inner: Any, *, model: str, command: Sequence[str] = ("vllm", "run-batch"),
                 vllm_model: str | None = None, extra_args: Sequence[str] = ()) -> None:
        super().__init__(inner, model=model)
        self.command = list(command)
        self.vllm_model = vllm_model or model
        self.extra_args = list(extra_args)
        self._processes: dict[int, subprocess.Popen] = {}

    @property
    def where(self) -> str:
        return "vllm run-batch"

    def _paths(self, record: BatchRecord) -> tuple[Path, Path]:
        base = Path(record.input_file)
        return base.with_name(base.stem + ".vllm-out.jsonl"), base.with_name(base.stem + ".vllm.log")

    async def submit(self, record: BatchRecord, on_file: Any) -> str:
        if shutil.which(self.command[0]) is None:
            raise ConfigError(f"{self.command[0]!r} was not found: install vLLM on this machine (see docs/vllm.md) "
                              "or choose another batch backend.")
        output, log = self._paths(record)
        command = [*self.command, "-i", record.input_file, "-o", str(output), "--model", self.vllm_model, *self.extra_args]
        with open(log, "wb") as handle:
            # Its own session: the job outlives a driver that exits with --no-wait, like a provider's batch.
            process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        self._processes[process.pid] = process
        return f"pid:{process.pid}"

    def _exit_code(self, pid: int) -> int | None:
        """None while the job runs; its exit code (-1 when it ran in another process and is gone)."""
        process = self._processes.get(pid)
        if process is not None:
            return process.poll()
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return -1
        except PermissionError:  # someone else's process took the pid: ours is gone
            return -1
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.exists() and b"run-batch" not in cmdline.read_bytes():
            return -1
        return None

    async def poll(self, record: BatchRecord) -> RemoteStatus:
        if not record.remote_id or not record.remote_id.startswith("pid:"):
            raise BatchMissingError(f"batch {record.id} has no vllm run-batch process recorded")
        code = self._exit_code(int(record.remote_id[4:]))
        output, log = self._paths(record)
        if code is None:
            return RemoteStatus("running")
        if output.exists() and (code == 0 or code == -1):
            return RemoteStatus("ended", refs={"output": str(output)})
        tail = log.read_text(errors="replace")[-400:].strip() if log.exists() else ""
        return RemoteStatus("failed", reason=f"vllm run-batch exited with status {code}: {tail or 'no output'}")

    async def download(self, record: BatchRecord, status: RemoteStatus, path: Path) -> None:
        shutil.copyfile(status.refs["output"], path)

    async def cancel(self, record: BatchRecord) -> None:
        if record.remote_id and record.remote_id.startswith("pid:"):
            try:
                os.killpg(int(record.remote_id[4:]), 15)
            except (ProcessLookupError, PermissionError):
                pass

    async def close(self) -> None:
        self._processes.clear()  # running jobs go on; a rerun polls them


__all__ = ["VLLMRunBatchBackend"]
