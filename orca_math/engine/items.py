"""What processing one item can end in: an `ItemResult`, an `ItemFailedError`, or a deferred call.

These are the engine's vocabulary with stages. Stages return `ItemResult` or raise
`ItemFailedError` (a failure row with its reason); the runner records either as one checkpoint
line. `CallDeferred` is raised by a model client in batch mode when a call's reply is not there
yet: the item is not recorded, and the runner offers it again once the batch has come back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orca_math.errors import OrcaMathError
from orca_math.records import Usage


@dataclass
class ItemResult:
    """What processing one item produced: rows for the next stage, rows dropped on purpose, tokens."""

    outputs: list[dict[str, Any]] = field(default_factory=list)
    drops: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)


class ItemFailedError(Exception):
    """Raise from `Stage.process` to record a failure with a clear reason (and the raw reply, if any).

    An item can fail and still pass rows on (`outputs`): Expand with `keep_seeds` passes the seed on
    when its Ask-Me-Anything call failed. Such an item is one failure record that also carries its
    rows: it counts once, as failed, in the funnel; its rows go to the next stage like any output;
    and a rerun retries it, since it is not "ok". When the retry succeeds, its new outputs replace
    the old ones; rows the next stage already finished are not redone (they are keyed by id).

    Attributes:
        reason: one sentence saying why the item failed; it goes into the failure row.
        raw_reply: the model's last reply, when there was one.
        attempts: how many replies were asked for.
        usage: tokens spent on the item before it failed (funnels and budgets count them).
        outputs: rows the item passes on despite failing (none by default).
    """

    def __init__(self, reason: str, *, raw_reply: str | None = None, attempts: int = 1, usage: Usage | None = None,
                 outputs: list[dict[str, Any]] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw_reply = raw_reply
        self.attempts = attempts
        self.usage = usage or Usage()
        self.outputs = list(outputs or [])


class RunStopped(OrcaMathError, RuntimeError):
    """The run stopped before finishing (breaker open, budget reached, bad key). Finished work is kept."""

    stops_run = True


class CallDeferred(Exception):  # noqa: N818 -- not an error: a reply that is on its way
    """A model call whose reply will come later (batch mode): the item is offered again after the batch.

    Raised by a batch-mode client's `create`; stages let it pass (it is not an `ItemFailedError`),
    and the runner neither records the item nor counts it as failed.
    """


__all__ = ["CallDeferred", "ItemFailedError", "ItemResult", "RunStopped"]
