"""Endpoint URLs as they may be shown and keyed: without credentials, one spelling per endpoint."""

from __future__ import annotations


def without_credentials(url: str) -> str:
    """Strip `user:password@` from a URL: descriptions end up in manifests, logs and cards."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def normalize_endpoint(url: str) -> str:
    """One spelling per endpoint, for run keys and cache keys (not for connecting).

    The scheme and host are lower-cased, a default port (80, 443) and trailing slashes are dropped:
    ``HTTP://127.0.0.1:8000/v1/`` and ``http://127.0.0.1:8000/v1`` are one endpoint. ``localhost`` is
    kept as written: it may resolve to ``::1`` as well as ``127.0.0.1``, which can be two servers, so
    the host's spelling stays part of the key. Text that is not a URL comes back unchanged.
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:  # not a number: leave the text alone
        return url
    if not parts.scheme or not parts.hostname:
        return url
    scheme = parts.scheme.lower()
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # hostname is lower-case already
    if (scheme, port) in (("http", 80), ("https", 443)):
        port = None
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + host + (f":{port}" if port else "")
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), parts.query, parts.fragment))


__all__ = ["normalize_endpoint", "without_credentials"]
