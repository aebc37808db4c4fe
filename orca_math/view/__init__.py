"""`orca-math view`: a local web viewer of a run's funnel, rows, lineage, learning loop and comparisons.

    from orca_math.view import ViewServer

    with ViewServer(["runs/demo"]) as server:   # serves on 127.0.0.1 in a background thread
        print(server.url)

or, blocking, as the command line does: `serve(["runs/demo"], port=8765)`.

The viewer is read-only and binds to 127.0.0.1. Serving on another address requires a token,
which `serve` makes and prints in the URL. Needs the `view` extra (`pip install "orca-math[view]"`).
"""

from __future__ import annotations

import errno
import ipaddress
import secrets
import socket
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orca_math.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _imports():
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise ConfigError(f"orca-math view needs the view extra ({exc.name} is missing): "
                          'pip install "orca-math[view]".') from None
    return uvicorn


def _check_address(host: str, port: int) -> None:
    """Bind once to see that `host` names this machine and `port` is free, so uvicorn never fails later with a log line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except socket.gaierror as exc:
            raise ConfigError(f"--host {host}: no such address on this machine ({exc.strerror}); give an IP address "
                              "or name of this machine, or leave --host out for 127.0.0.1.") from None
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(f"--host {host}: cannot listen on that address, it is not one of this machine's "
                                  f"({exc.strerror}); leave --host out for 127.0.0.1.") from None
            raise ConfigError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror}); choose another port "
                              "with --port, or --port 0 for any free one.") from None


def _exposed(host: str) -> str:
    return (f"serving on {host}, reachable from other machines; anyone with the token in the URL below can read "
            "these folders.")


class ViewServer:
    """The viewer served by uvicorn in a background thread, for notebooks and tests.

    Args:
        folders: the folders to show (the first is the main one).
        host: the address to bind; 127.0.0.1 unless you mean to share the viewer.
        port: the port; 0 picks a free one.
        token: required on every request when given; made for you when `host` is not loopback
            (which also warns, with a `UserWarning`: other machines can reach the viewer).

    Attributes:
        url: the address to open (with `?token=` when a token is required), set once started.
    """

    def __init__(self, folders: Sequence[str | Path], *, host: str = DEFAULT_HOST, port: int = 0, token: str | None = None) -> None:
        uvicorn = _imports()
        from orca_math.view.app import create_app

        if token is None and not is_loopback(host):
            token = secrets.token_urlsafe(18)
        self.token = token
        self.host = host
        self.app = create_app(list(folders), token=token)
        _check_address(host, port)
        if not is_loopback(host):
            warnings.warn(_exposed(host), UserWarning, stacklevel=2)
        config = uvicorn.Config(self.app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self.port = port
        self.url = ""

    def start(self) -> ViewServer:
        """Start serving and wait until the socket listens."""
        self._thread = threading.Thread(target=self._server.run, name="orca-math-view", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"the viewer could not start on {self.host}:{self.port}.")
            time.sleep(0.02)
        sockets = [s for server in self._server.servers for s in server.sockets]
        self.port = sockets[0].getsockname()[1]
        self.url = make_url(self.host, self.port, self.token)
        return self

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> ViewServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def make_url(host: str, port: int, token: str | None) -> str:
    """The address a browser opens, with the token when one is required."""
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = socket.gethostname()
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(folders: Sequence[str | Path], *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
    """Serve the viewer until Ctrl-C, printing its URL (and a warning and token off loopback).

    Raises:
        ConfigError: the view extra is missing, the host is not this machine's, or the port is taken.
        OutputFolderError: a folder is not an orca-math folder.
    """
    uvicorn = _imports()
    from orca_math.view.app import create_app

    token = None if is_loopback(host) else secrets.token_urlsafe(18)
    app = create_app(list(folders), token=token)
    _check_address(host, port)
    if token is not None:
        print(f"warning: {_exposed(host)}", file=sys.stderr)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)

    original = server.startup

    async def startup(sockets=None) -> None:
        await original(sockets=sockets)
        bound = [s for srv in server.servers for s in srv.sockets]
        actual = bound[0].getsockname()[1] if bound else port
        print(f"orca-math view: serving {', '.join(str(f) for f in folders)} at {make_url(host, actual, token)} "
              "(Ctrl-C to stop)", flush=True)

    server.startup = startup  # type: ignore[method-assign]
    server.run()


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ViewServer", "is_loopback", "make_url", "serve"]
