"""Split waiting requests into batches that fit a provider's limits and a token budget per batch.

A file over the provider's limit is split here, before upload, never refused mid-run. Limits:
the request count and byte size per file (OpenAI: 50,000 and 200 MB; Anthropic: 100,000 and
256 MB) and an optional budget of enqueued prompt tokens per batch (providers cap the tokens a
tier may have waiting at once).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one batch may hold: requests, bytes of its input, and prompt tokens (None: no token cap)."""

    max_requests: int
    max_bytes: int
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.max_bytes < 1 or (self.max_tokens is not None and self.max_tokens < 1):
            raise ValueError(f"batch limits must be positive; got {self}")


@dataclass(slots=True)  # one per waiting request: 200,000 of them at once
class Prepared:
    """One request ready to go: its content key, custom_id, where its encoded input line lies, and its prompt tokens.

    The line itself stays on disk (a spool file, or the input file of the batch it was last in):
    200,000 waiting requests would otherwise hold hundreds of megabytes.
    """

    key: str
    custom_id: str
    size: int
    tokens: int
    source: str = ""
    offset: int = 0
    completion: int = 0  # the expected reply length, for the budget (0: the meter's estimate)

    def read(self, handle) -> bytes:
        """The line, from `handle` (open on `source`, binary)."""
        handle.seek(self.offset)
        return handle.read(self.size)


def chunks(requests: Iterable[Prepared], limits: Limits) -> Iterator[list[Prepared]]:
    """Consecutive groups of `requests`, each within `limits`.

    A request that alone passes the byte or token limit goes in a batch of its own (the provider
    decides about it; nothing else is held back by it).
    """
    chunk: list[Prepared] = []
    size = tokens = 0
    for request in requests:
        over = (len(chunk) + 1 > limits.max_requests or size + request.size > limits.max_bytes
                or (limits.max_tokens is not None and tokens + request.tokens > limits.max_tokens))
        if chunk and over:
            yield chunk
            chunk, size, tokens = [], 0, 0
        chunk.append(request)
        size += request.size
        tokens += request.tokens
    if chunk:
        yield chunk


__all__ = ["Limits", "Prepared", "chunks"]
