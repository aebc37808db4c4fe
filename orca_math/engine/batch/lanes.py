"""Lanes: the requests of one backend and model, which share batches, and how a stage's backend is chosen."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orca_math.engine.batch.backends.base import BatchBackend
from orca_math.engine.batch.chunking import Prepared
from orca_math.engine.batch.options import BatchOptions


@dataclass
class Lane:
    """Requests of one backend and model: they share batches (a batch holds one model)."""

    backend: BatchBackend
    model: str
    pending: dict[str, Prepared] = field(default_factory=dict)

    _spool: Any = None  # the open file holding the waiting requests' lines

    def spool(self, folder: Path, data: bytes) -> tuple[str, int]:
        """Append a waiting request's line to this lane's spool file; returns (path, offset)."""
        if self._spool is None:
            import os

            self._spool = open(folder / f"waiting-{self.backend.name}-{os.getpid()}.spool", "w+b")  # noqa: SIM115 -- held open
        offset = self._spool.tell()
        self._spool.write(data)
        return self._spool.name, offset

    def drop_spool(self) -> None:
        """Delete the spool once nothing waits in it (a killed run's spool is only rebuilt: nothing in it was sent)."""
        if self._spool is not None and not self.pending:
            import os

            self._spool.close()
            os.unlink(self._spool.name)
            self._spool = None


def choose_backend(client: Any, options: BatchOptions) -> BatchBackend:
    """The backend for a stage's client: `options.backend`, or the model's provider (see `orca_math.engine.batch.backends`)."""
    from orca_math.engine.batch.backends import make_backend
    from orca_math.engine.client import ManagedClient
    from orca_math.models.identity import identity_of

    inner = client.inner if isinstance(client, ManagedClient) else client
    return make_backend(inner, identity_of(client), options)


__all__ = ["Lane", "choose_backend"]
