"""Token estimates: tiktoken with the offline cache, and a rough count with one warning without it."""

from __future__ import annotations

import logging

from orca_math import tokens


def test_tiktoken_counts_with_the_offline_cache():
    tokens._encoding.cache_clear()
    assert tokens.tiktoken_available()
    assert tokens.estimate_tokens("Natalia sold clips to 48 of her friends.") == 11  # o200k_base, not len/4 (10)


def test_without_an_encoding_it_estimates_and_warns_once(monkeypatch, tmp_path, caplog):
    tokens._encoding.cache_clear()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # an empty cache, and no network
    monkeypatch.setenv("ORCA_MATH_TIKTOKEN_ENCODING", "cl100k_base")
    import tiktoken.registry

    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    with caplog.at_level(logging.WARNING, logger="orca_math.tokens"):
        assert tokens.estimate_tokens("x" * 40) == 10
        assert tokens.estimate_tokens("y" * 8) == 2
    warnings = [r for r in caplog.records if "tiktoken could not load" in r.getMessage()]
    assert len(warnings) == 1
    tokens._encoding.cache_clear()
