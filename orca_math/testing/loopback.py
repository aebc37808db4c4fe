"""`LoopbackServer`: an aiohttp app served on 127.0.0.1 from a background thread with its own loop.

The test servers (`fault_server.FaultServer`, `batch_server.BatchServer`) subclass it and give
their app through `_app()`; starting, stopping and the context-manager protocol live here once.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TypeVar

from aiohttp import web

Self = TypeVar("Self", bound="LoopbackServer")


class LoopbackServer:
    """Serves `_app()` on 127.0.0.1:`port` (0 picks a free port) until `stop`.

    Subclasses override `_app` (the `aiohttp.web.Application` to serve) and set `thread_name`.
    """

    thread_name = "loopback-server"

    def __init__(self, *, port: int = 0) -> None:
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def _app(self) -> web.Application:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ending in ``/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    async def _start(self) -> None:
        self._runner = web.AppRunner(self._app(), handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def start(self: Self) -> Self:
        """Start serving; returns self once the port is bound."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), loop).result(timeout=10)
        return self

    async def _shutdown(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
        # Handlers still hanging (timeouts, drops) would otherwise be destroyed pending with the loop.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def stop(self) -> None:
        """Stop serving, cancelling requests still hanging."""
        if self._loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._runner = None

    def __enter__(self: Self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


__all__ = ["LoopbackServer"]
