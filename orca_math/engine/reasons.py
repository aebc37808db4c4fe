"""Group failure rows by what went wrong, for funnels, `summary.json` and the runner's early stop.

A failure's reason is a full sentence that quotes the endpoint ("http://127.0.0.1:8000/v1 answered
500; ...") or a server's error body, so cutting it at a colon gave groups such as "//127.0.0.1".
Model errors are grouped by error class and HTTP status instead; an agent's own rejection of a
reply (`ItemFailedError`) by its reason text, which already names the problem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s;,)]+", re.IGNORECASE)
_LAST_ERROR = "the last error was:"
_GIST_CHARS = 90


def failure_status(exc: BaseException) -> int | None:
    """The HTTP status behind an error (that of the last attempt, after retries), or None."""
    for candidate in (exc, getattr(exc, "last_error", None)):
        status = getattr(candidate, "status_code", None)
        if isinstance(status, int) and not isinstance(status, bool):
            return status
    return None


def reason_gist(reason: str) -> str:
    """A failure reason with "the server" for endpoint URLs, no retry preamble, cut to about 90 characters."""
    text = reason.split(_LAST_ERROR, 1)[-1] if _LAST_ERROR in reason else reason
    text = " ".join(_URL.sub("the server", text).split()).lstrip(" :;,.-")
    if len(text) > _GIST_CHARS:
        text = text[: _GIST_CHARS - 1].rstrip() + "…"
    return text or reason.strip()[:_GIST_CHARS]


def failure_group(failure: Mapping[str, Any]) -> tuple[str, ...]:
    """What makes two failure rows "the same failure": class and status, or the agent's reason."""
    error_type = str(failure.get("error_type") or "")
    status = failure.get("status")
    if error_type in ("", "ItemFailedError") or (status is None and error_type == "ValueError"):
        return ("reason", reason_gist(str(failure.get("reason") or "")))
    return (error_type, str(status) if status is not None else "")


def failure_label(failure: Mapping[str, Any]) -> str:
    """A readable name of the failure's group: "BadRequestError 400: refused the request …"."""
    group = failure_group(failure)
    if group[0] == "reason":
        return group[1]
    head = f"{group[0]} {group[1]}".strip()
    return f"{head}: {reason_gist(str(failure.get('reason') or ''))}"


__all__ = ["failure_group", "failure_label", "failure_status", "reason_gist"]
