"""`BatchClient`: the `ChatCompletionClient` a stage calls in batch mode.

Its `create` answers from, in order: the batch state (a result downloaded in this or an earlier
process), the response cache (a prompt answered online, or by another job sharing the cache, is
never sent again), or not at all: it records the request for the next batch and raises `CallDeferred`,
and the runner offers the item again once the batch is back. A request whose batch keeps failing
raises `BatchRequestFailedError` with every reason, which fails only its item; a later run (the
same command again) sends it again with its attempts renewed, as online reruns retry failed items.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from autogen_core import CancellationToken
from autogen_core.models import CreateResult, LLMMessage

from orca_math.engine.batch.chunking import Prepared
from orca_math.engine.batch.requests import Call, create_result, json_default, sendable_args
from orca_math.engine.client import LABEL_KEY, ManagedClient, request_cache_key
from orca_math.engine.items import CallDeferred
from orca_math.files import json_bytes
from orca_math.models.base import WrappingChatClient
from orca_math.models.errors import ModelError
from orca_math.models.identity import identity_of, register_identity
from orca_math.tokens import estimate_tokens

if TYPE_CHECKING:
    from orca_math.engine.batch.calls import BatchCalls
    from orca_math.engine.batch.lanes import Lane


class BatchRequestFailedError(ModelError):
    """A request that came back without a reply as often as it was allowed to be sent; fails its item."""

    stops_run = False


class BatchClient(WrappingChatClient):
    """Wraps a stage's (managed) client: replies come from batches.

    Args:
        calls: the job's `BatchCalls` (state, lanes, settle).
        client: the stage's client, usually a `ManagedClient` (its cache and key check are used).
        lane: the lane (backend and model) its requests go to.
        meter: the job's usage meter (batch prices, budget).
    """

    component_type = "model"
    #: agents keep orca-math's hints (sample id, label) in the create args for this client
    reads_orca_math_args = True

    def __init__(self, calls: BatchCalls, client: Any, lane: Lane, meter: Any) -> None:
        super().__init__(client)
        self.calls = calls
        self.lane = lane
        self.meter = meter
        self.managed = client if isinstance(client, ManagedClient) else None
        self.model_name = lane.model
        register_identity(self, identity_of(client))
        self._identity = identity_of(client).describe()
        self._served: set[str] = set()  # keys metered in this process (a reply served twice is paid once)
        self._checked = False

    def _key(self, messages: Sequence[LLMMessage], json_output: Any, args: Mapping[str, Any], tools: Sequence[Any]) -> str:
        # The response cache's own key (with the managed client's identity), so cached replies and
        # batch results are one.
        identity = self.managed._identity if self.managed is not None else self._identity
        return request_cache_key(identity, messages, json_output, args, tools)

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Any] = (),
        tool_choice: Any = "auto",
        json_output: bool | type | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        """The reply when it is known (cache or batch result), else `CallDeferred` after recording the request.

        Raises:
            CallDeferred: the reply will come in a batch; the item is offered again after it.
            BatchRequestFailedError: the request came back without a reply too often (its reasons).
            AuthenticationError: the key is refused (checked once, before the first request).
        """
        args = dict(extra_create_args)
        label = args.pop(LABEL_KEY, None)
        key = self._key(messages, json_output, args, tools)
        cache = self.managed.cache if self.managed is not None else None
        # The batch state first: a result it holds was paid for in a batch, and an item that is
        # offered again (its later calls were deferred) must count it as paid, not as a cache hit.
        record = self.calls.state.request(key)
        # A reply an agent rejected is served again in the process that rejected it (the item goes on
        # to ask again, with the reason); a later run asks the model anew, as online (the cache forgets it).
        served = record is not None and record.result is not None and (
            record.state == "succeeded" or (record.state == "rejected" and key in self._served))
        if served:
            assert record is not None and record.result is not None
            result = create_result(record.result)
            if key not in self._served:
                self._served.add(key)
                self.meter.record(self.model_name, result.usage.prompt_tokens, result.usage.completion_tokens, label=label,
                                  reserved=self.calls.reservations.pop(key, 0.0))
                if cache is not None:
                    await cache.put(key, result, model=self.model_name)
            return result
        if record is not None and record.state == "failed":
            if self.calls.failed_in_this_run(key):
                self.meter.release(self.calls.reservations.pop(key, 0.0))  # nothing will be paid for it
                history = "; ".join(record.history or [record.reason or "no reason recorded"])
                raise BatchRequestFailedError(f"no reply after {record.attempts} batch attempt(s) at {self.lane.backend.where}: "
                                              f"{history}")
            # Given up by an earlier run: a rerun retries failed items, so the request gets its attempts
            # again, in the next batch (at the batch price). Its earlier reasons stay in its history.
            self.calls.state.renew(key)
        if record is not None and record.state == "submitted":
            raise CallDeferred(key)
        if cache is not None:  # answered online, or by an earlier batch job sharing the cache: never sent again
            hit = await cache.get(key)
            if hit is not None:
                usage = hit.usage
                self.meter.record_cache_hit(self.model_name, usage.prompt_tokens if usage else 0,
                                            usage.completion_tokens if usage else 0)
                return hit
        await self._check_access()
        self._enqueue(key, messages, tools, tool_choice, json_output, args)
        raise CallDeferred(key)

    async def _check_access(self) -> None:
        """One key check before the first request (as online): a refused key stops the run at the first call."""
        if self._checked:
            return
        from orca_math.models.access import verify_access

        inner = self.managed.inner if self.managed is not None else self.inner
        if self.lane.backend.name != "vllm":
            await verify_access(inner, where=self.lane.backend.where)
        self._checked = True

    def _enqueue(self, key: str, messages: Sequence[LLMMessage], tools: Sequence[Any], tool_choice: Any,
                 json_output: Any, args: Mapping[str, Any]) -> None:
        if key in self.lane.pending:
            return
        call = Call(messages=list(messages), tools=list(tools), tool_choice=tool_choice, json_output=json_output,
                    create_args=sendable_args(args))
        custom_id = "r" + key[:40]
        line = self.lane.backend.line(custom_id, call)
        texts = [m.content if isinstance(m.content, str) else str(m.content) for m in messages]
        if self.meter.budget is not None or self.calls.options.max_tokens is not None:
            prompt = sum(estimate_tokens(text) for text in texts)  # a budget or a token cap per batch depends on it
        else:  # as the managed client does: characters / 4 is enough when nothing depends on the count
            prompt = sum(len(text) for text in texts) // 4 + 1
        max_tokens = call.create_args.get("max_tokens") or call.create_args.get("max_completion_tokens")
        completion = int(max_tokens) if max_tokens else self.meter.expected_completion_tokens(self.model_name)
        data = json_bytes(line, default=json_default) + b"\n"
        source, offset = self.lane.spool(self.calls.state.folder, data)
        self.lane.pending[key] = Prepared(key, custom_id, len(data), prompt, source, offset, completion)

    async def reject_reply(self, messages: Sequence[LLMMessage], *, tools: Sequence[Any] = (),
                           json_output: bool | type | None = None, extra_create_args: Mapping[str, Any] = {}) -> bool:
        """An unusable reply: dropped from the response cache, and asked for anew by a later run (not by this one)."""
        args = {k: v for k, v in extra_create_args.items() if k != LABEL_KEY}
        self.calls.state.mark_rejected(self._key(messages, json_output, args, tools))
        if self.managed is None:
            return False
        return await self.managed.reject_reply(messages, tools=tools, json_output=json_output,
                                               extra_create_args=extra_create_args)

    def stats(self) -> dict[str, Any]:
        """Progress-display numbers: what waits for a batch, and the managed client's counters."""
        stats = self.managed.stats() if self.managed is not None else {}
        return {**stats, "batch_pending": len(self.lane.pending)}


__all__ = ["BatchClient", "BatchRequestFailedError"]
