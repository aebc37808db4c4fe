"""Token estimates with tiktoken, falling back to a rough count (with one warning) offline.

tiktoken downloads its encodings on first use. Without network, point `TIKTOKEN_CACHE_DIR` at a
folder holding them; when no encoding can be loaded, we estimate 1 token per 4 characters.
"""

from __future__ import annotations

import functools
import logging
import math
import os

logger = logging.getLogger(__name__)

DEFAULT_ENCODING = "o200k_base"
_CHARS_PER_TOKEN = 4.0


@functools.cache
def _encoding(name: str):
    try:
        import tiktoken

        return tiktoken.get_encoding(name)
    except Exception as exc:  # offline, missing cache, or tiktoken not installed
        logger.warning(
            "tiktoken could not load the %r encoding (%s); token counts are estimated as characters/4. "
            "Set TIKTOKEN_CACHE_DIR to a folder with tiktoken's cached encodings for exact counts.",
            name,
            type(exc).__name__,
        )
        return None


def estimate_tokens(text: str, encoding: str | None = None) -> int:
    """Count tokens of `text` with tiktoken, or estimate them when no encoding can be loaded."""
    if not text:
        return 0
    enc = _encoding(encoding or os.environ.get("ORCA_MATH_TIKTOKEN_ENCODING", DEFAULT_ENCODING))
    if enc is None:
        return math.ceil(len(text) / _CHARS_PER_TOKEN)
    return len(enc.encode(text, disallowed_special=()))


def tiktoken_available(encoding: str = DEFAULT_ENCODING) -> bool:
    """Whether exact counts are available."""
    return _encoding(encoding) is not None
