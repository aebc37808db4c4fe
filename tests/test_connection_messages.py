"""A refused or dropped connection is reported as what it is, on both transports, not as "timed out"."""

from __future__ import annotations

import socket

import pytest

from orca_math.engine import ManagedClient, RetriesExhaustedError, RetryPolicy
from orca_math.models import load_model
from orca_math.models.errors import ModelTimeoutError, ServerError, ServerUnreachableError
from orca_math.testing.fault_server import FaultConfig, FaultServer
from tests._engine_helpers import ask, run

ONE_ATTEMPT = RetryPolicy(max_attempts=1)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _last_error(base_url: str, transport: str) -> BaseException:
    client = ManagedClient(load_model(base_url, model="fault-model", api_key="sk-test", transport=transport, timeout=5.0),
                           retry=ONE_ATTEMPT)
    try:
        with pytest.raises(RetriesExhaustedError) as caught:
            await client.create(ask())
        return caught.value.last_error
    finally:
        await client.close()


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_a_refused_connection_says_it_could_not_connect(transport):
    error = run(_last_error(f"http://127.0.0.1:{_closed_port()}/v1", transport))
    assert isinstance(error, ServerUnreachableError), error
    assert "Could not connect to http://127.0.0.1:" in str(error) and "timed out" not in str(error)


def test_a_dropped_connection_on_aiohttp_says_the_server_closed_it():
    with FaultServer(FaultConfig(outcomes=["drop"])) as server:
        error = run(_last_error(server.base_url, "aiohttp"))
    assert isinstance(error, ServerError) and not isinstance(error, ModelTimeoutError), error
    assert "closed the connection" in str(error) and "timed out" not in str(error)
