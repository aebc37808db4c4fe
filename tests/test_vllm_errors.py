"""The vLLM integration's failure paths that need no vLLM: install hints, bad folders, memory
messages, child processes that die with their parent, and a server that exits or dies (a fake
``vllm serve`` written in Python stands in for the real one)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from orca_math.models import load_model
from orca_math.models._vllm_engine import engine_error
from orca_math.models.errors import ModelSpecError
from orca_math.models.vllm_server import VLLMServer, VLLMServerError
from orca_math.processes import spawn, stop


def test_missing_vllm_names_the_extra(monkeypatch, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(ModelSpecError, match=r"pip install 'orca-math\[vllm\]'.*setup_vllm\.sh"):
        load_model(f"vllm:{tmp_path}")


def test_spec_without_a_folder_is_refused():
    with pytest.raises(ModelSpecError, match="needs a checkpoint folder"):
        load_model("vllm:")


def test_folder_without_config_is_refused_before_vllm_starts(tmp_path):
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelSpecError, match=rf"cannot load {tmp_path}: it has no config.json"):
        load_model(f"vllm:{tmp_path}")
    with pytest.raises(ModelSpecError, match="is not a folder"):
        load_model(f"vllm:{tmp_path / 'model.gguf'}")


def test_engine_start_failure_quotes_the_log_and_names_what_to_lower(tmp_path):
    log = tmp_path / "engine.log"
    log.write_text("INFO loading\n(EngineCore pid=1) ERROR 12-01 [core.py:1] ValueError: To serve at least one "
                   "request with the model's max seq len (8192), 0.19 GiB KV cache is needed, which is larger "
                   "than the available KV cache memory (0.01 GiB).\n")
    generic = RuntimeError("Engine core initialization failed. See root cause above. Failed core proc(s): {}")
    gpu = engine_error(generic, "ckpt/m1", {"max_model_len": 8192, "gpu_memory_utilization": 0.9}, log, on_cpu=False)
    message = str(gpu)
    assert "ran out of memory starting ckpt/m1" in message and "0.19 GiB KV cache is needed" in message
    assert "lower max_model_len (now 8192) or gpu_memory_utilization (now 0.9)" in message
    cpu = str(engine_error(generic, "ckpt/m1", {"max_model_len": 8192}, log, on_cpu=True))
    assert "kv_cache_space_gib" in cpu and "max_model_len (now 8192)" in cpu
    other = str(engine_error(ValueError("Unrecognized model in ckpt/m1."), "ckpt/m1", {}, log, on_cpu=True))
    assert other.startswith("vLLM could not load ckpt/m1: Unrecognized model in ckpt/m1") and "\n" not in other


# ---------------------------------------------------------------- child processes


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_stop_ends_the_whole_process_group():
    process = spawn(["sh", "-c", "sleep 300 & sleep 300 & wait"])
    deadline = time.monotonic() + 10
    while len(psutil.Process(process.pid).children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchildren = [child.pid for child in psutil.Process(process.pid).children()]
    assert len(grandchildren) == 2
    assert os.getpgid(process.pid) == process.pid != os.getpgid(0)
    stop(process, timeout=5)
    time.sleep(0.2)
    assert not any(_alive(pid) for pid in [process.pid, *grandchildren])
    stop(process)  # twice is fine


def test_stop_kills_a_child_that_ignores_sigterm():
    process = spawn([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                     "print('ready', flush=True); time.sleep(300)"], stdout=subprocess.PIPE)
    assert process.stdout.readline().strip() == b"ready"
    assert stop(process, timeout=0.5) == -signal.SIGKILL


def test_a_child_dies_when_its_parent_is_killed(tmp_path):
    pid_file = tmp_path / "child.pid"
    parent_code = textwrap.dedent(f"""
        import time
        from orca_math.processes import spawn
        child = spawn(["sleep", "300"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(300)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    try:
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(pid_file.read_text())
        assert _alive(child)
        parent.kill()  # SIGKILL: no finally, no atexit in the parent
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        parent.kill()


# ---------------------------------------------------------------- served mode, with a fake server

# Stands in for `python -m vllm.entrypoints.cli.main serve CKPT --host H --port P ...`: answers
# /v1/models, and exits with a log line when FAKE_MODE says so.
FAKE_SERVER = textwrap.dedent("""\
    #!PYTHON
    import http.server, os, sys, threading, time
    args = sys.argv[sys.argv.index("serve") + 1:]
    port = int(args[args.index("--port") + 1])
    mode = os.environ.get("FAKE_MODE", "serve")
    print("fake vllm: loading", args[0], flush=True)
    if mode == "crash":
        print("ValueError: the checkpoint has no weights", flush=True)
        sys.exit(3)
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"object": "list", "data": [{"id": "fake", "object": "model"}]}'
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    if mode == "die":
        def die():
            time.sleep(1.0)
            print("RuntimeError: CUDA out of memory (fake)", flush=True)
            os._exit(7)
        threading.Thread(target=die, daemon=True).start()
    server.serve_forever()
""")


@pytest.fixture
def fake_python(tmp_path):
    path = tmp_path / "fake-python"
    path.write_text(FAKE_SERVER.replace("PYTHON", sys.executable, 1))
    path.chmod(0o755)
    return path


def test_server_serves_for_the_block_and_leaves_no_process(fake_python, tmp_path):
    server = VLLMServer("ckpt/m1", python=fake_python, log_dir=tmp_path, startup_timeout=30)
    with server as url:
        assert url == server.url and url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        assert server.running()
        pid = server.process.pid
    assert not _alive(pid)
    assert "fake vllm: loading ckpt/m1" in server.log_tail()


def test_server_that_exits_at_start_raises_with_its_log(fake_python, tmp_path):
    server = VLLMServer("ckpt/m1", python=fake_python, log_dir=tmp_path, env={"FAKE_MODE": "crash"},
                        startup_timeout=30)
    with pytest.raises(VLLMServerError, match=r"exited with code 3 before it answered(.|\n)*has no weights"):
        with server:
            pass


def test_server_that_dies_during_a_sync_block_fails_the_block(fake_python, tmp_path):
    server = VLLMServer("ckpt/m1", python=fake_python, log_dir=tmp_path, env={"FAKE_MODE": "die"},
                        startup_timeout=30)
    with pytest.raises(VLLMServerError, match=r"exited with code 7 while in use(.|\n)*CUDA out of memory"):
        with server:
            deadline = time.monotonic() + 20
            while server.running() and time.monotonic() < deadline:
                time.sleep(0.1)


def test_server_that_dies_cancels_an_async_block_at_once(fake_python, tmp_path):
    server = VLLMServer("ckpt/m1", python=fake_python, log_dir=tmp_path, env={"FAKE_MODE": "die"},
                        startup_timeout=30)
    reached_end = []

    async def step():
        async with server:
            await asyncio.sleep(60)  # a long step; the server's death must end it early
            reached_end.append(True)

    started = time.monotonic()
    with pytest.raises(VLLMServerError, match="CUDA out of memory"):
        asyncio.run(step())
    assert not reached_end and time.monotonic() - started < 60
    assert not _alive(server.process.pid)


def test_an_error_in_the_block_stops_the_server(fake_python, tmp_path):
    server = VLLMServer("ckpt/m1", python=fake_python, log_dir=tmp_path, startup_timeout=30)
    with pytest.raises(KeyboardInterrupt):
        with server:
            raise KeyboardInterrupt  # what Ctrl-C raises in the block
    assert not _alive(server.process.pid)


def test_chat_template_text_is_written_to_a_file(tmp_path):
    server = VLLMServer("ckpt/m1", chat_template="{{ messages[0]['content'] }}", log_dir=tmp_path)
    path = Path(server.command[server.command.index("--chat-template") + 1])
    assert path.read_text() == "{{ messages[0]['content'] }}"
