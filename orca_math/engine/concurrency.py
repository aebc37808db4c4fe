"""Adaptive concurrency: how many model calls may be in flight, learned from how the server answers.

`ManagedClient` takes a slot per request and reports how it ended. The limit grows by one per
window of completions, as TCP grows by one per round trip, and falls only on real overload: a
share of 429s, 503s and timeouts clearly above the share that stays when the limit falls, or
server latency well above its baseline for a while (see `AdaptiveConcurrency`). Every time
reading comes from the running event loop's clock, so the controller can be driven in virtual
time (tests do), and one instance can outlive an event loop.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from orca_math.engine.loop_lag import LoopLag
from orca_math.engine.slots import EARLY, ConcurrencySlot
from orca_math.engine.slots import now as _now


class AdaptiveConcurrency:
    """A limit on calls in flight: additive increase per window, decrease only on real overload.

    It starts at `ceiling`. Completions of calls that started since the last cut are counted in
    windows of `max(limit, min_window)`. At the end of a window without overload the limit grows
    by one, so recovery takes one window per step however many errors are mixed in.

    **Overload replies** (429, 503, timeouts). Their share in a window is compared with a
    *background share*: what stays when the limit falls, such as a provider's random 429s. A
    window is overloaded when its share exceeds the background by `overload_margin` plus two
    standard deviations of a window's noise. The limit is then multiplied by `decrease_factor`
    and new calls wait for the latest Retry-After. The next window checks the cut: when the share
    did not fall, the 429s were not caused by load, so the cut is undone and the background share
    becomes what was measured; when it fell, the cut stays. A share above `max_background` is
    always treated as overload. Otherwise a Retry-After only delays the retry of the call that
    got it: it is a pacing signal.

    **Latency.** Self-hosted servers (vLLM, SGLang, llama.cpp) slow down instead of refusing. A
    smoothed latency per reply token above `latency_factor` times its baseline (the lowest seen,
    drifting up by `baseline_drift` per reply) counts as overload too, but only when a typical
    reply is at least `latency_floor` seconds slower than at baseline and only after
    `latency_window` such replies in a row, so that millisecond jitter never cuts the limit. A
    latency cut multiplies the limit by `latency_decrease_factor`; the limit never grows while
    latency is high. Latency is the server's: a call's time less the lag of the client's own
    event loop meanwhile (`LoopLag`), so a client saturated by its own CPU does not cut the limit.

    **Hung calls.** A call still running `hang_factor` times the typical reply time after it
    started (and at least `hang_floor` seconds), less the client's own loop lag meanwhile, stops
    counting against the limit, so that hung
    requests cannot hold the last slots until their timeout; at most `max_hung` calls at once are
    let go this way. Replies that took that long stay out of the averages. The bound is generous
    because hangs pile up: by Little's law a share h of calls hanging T seconds, at the ceiling's
    rate (ceiling / typical reply time), keeps ceiling x h x T / (typical reply time) calls hung. At
    2% hangs of 20 s on 50 ms replies that is 8 x ceiling; with 4 x ceiling the hung calls took
    the regular slots and the rate fell to about half.

    As in TCP, a call that started before a cut says nothing about the new limit: its outcome is
    not counted in windows, so a burst of simultaneous 429s cuts once.

    Args:
        ceiling: the most calls in flight, and the starting limit.
        floor: the least the limit goes down to.
        decrease_factor: multiplier on an overload cut (429s, 503s, timeouts), in (0, 1).
        latency_decrease_factor: multiplier on a latency cut, in (0, 1).
        min_window: the fewest completions that make a window, so shares are not judged on 1 or 2.
        overload_margin: how far (as a share of the window) overload replies may exceed the
            background share before the window counts as overloaded.
        max_background: the largest share of overload replies that can be taken as background.
        latency_factor: how far above baseline the smoothed latency may climb; None disables it.
        latency_smoothing: weight of the newest sample in the latency EWMA.
        baseline_drift: relative upward drift of the baseline per success.
        latency_floor: seconds a typical reply must be slower than at baseline before latency
            counts as overload; keeps millisecond-scale jitter from ever cutting the limit.
        latency_window: replies in a row that must be over both thresholds before a cut.
        hang_factor: a call running this many typical reply times no longer counts in flight;
            None disables it.
        hang_floor: seconds a call must wait on the server at least before it can count as hung
            (it decides only for servers whose typical reply is under 50 ms; each hang holds its
            slot this long).
        max_hung: the most calls let go as hung at once (default 8 x ceiling); beyond it a hung
            call keeps its slot. It bounds the connections open beyond the limit.
    """

    def __init__(
        self,
        ceiling: int = 64,
        *,
        floor: int = 1,
        decrease_factor: float = 0.75,
        latency_decrease_factor: float = 0.5,
        min_window: int = 8,
        overload_margin: float = 0.05,
        max_background: float = 0.5,
        latency_factor: float | None = 2.0,
        latency_smoothing: float = 0.2,
        baseline_drift: float = 0.001,
        latency_floor: float = 0.25,
        latency_window: int = 8,
        hang_factor: float | None = 10.0,
        hang_floor: float = 0.5,
        max_hung: int | None = None,
    ) -> None:
        if not 1 <= floor <= ceiling:
            raise ValueError(f"Concurrency needs 1 <= floor <= ceiling; got floor={floor}, ceiling={ceiling}.")
        for name, factor in (("decrease_factor", decrease_factor), ("latency_decrease_factor", latency_decrease_factor)):
            if not 0 < factor < 1:
                raise ValueError(f"{name} must lie in (0, 1); got {factor}.")
        if min_window < 1 or not 0 < latency_smoothing <= 1:
            raise ValueError("min_window must be >= 1 and latency_smoothing in (0, 1].")
        if not 0 <= overload_margin < 1 or not 0 <= max_background < 1:
            raise ValueError(f"overload_margin and max_background must lie in [0, 1); got {overload_margin}, {max_background}.")
        if latency_factor is not None and latency_factor <= 1:
            raise ValueError(f"latency_factor must be above 1 (or None); got {latency_factor}.")
        if latency_floor < 0 or latency_window < 1:
            raise ValueError(f"latency_floor must be >= 0 and latency_window >= 1; got {latency_floor}, {latency_window}.")
        if (hang_factor is not None and hang_factor <= 1) or hang_floor < 0:
            raise ValueError(f"hang_factor must be above 1 (or None) and hang_floor >= 0; got {hang_factor}, {hang_floor}.")
        self.ceiling, self.floor = ceiling, floor
        self.decrease_factor, self.latency_decrease_factor = decrease_factor, latency_decrease_factor
        self.min_window, self.overload_margin, self.max_background = min_window, overload_margin, max_background
        self.latency_factor, self.latency_smoothing, self.baseline_drift = latency_factor, latency_smoothing, baseline_drift
        self.latency_floor, self.latency_window = latency_floor, latency_window
        self.hang_factor, self.hang_floor = hang_factor, hang_floor
        if max_hung is not None and max_hung < 0:
            raise ValueError(f"max_hung must be >= 0 (or None); got {max_hung}.")
        self.max_hung = 8 * ceiling if max_hung is None else max_hung
        self.limit = ceiling
        self.in_flight = 0  # calls holding a slot, hung ones excepted
        self.decreases = 0
        self.restores = 0  # overload cuts undone because the share of 429s did not fall
        self.lowest_limit = ceiling
        self.background = 0.0  # share of overload replies that does not fall with the limit
        self._epoch = 0
        self._window_done = 0  # completions of this epoch's calls in the current window
        self._window_overloads = 0
        self._window_size = max(ceiling, min_window)
        self._checking: tuple[float, int] | None = None  # (share, limit) before the last overload cut
        self._paused_until = 0.0
        self._retry_until = 0.0  # when the latest Retry-After of this window ends
        self._pause_timer: asyncio.TimerHandle | None = None
        self._pause_loop: asyncio.AbstractEventLoop | None = None
        self._latency: float | None = None  # EWMA of seconds per reply token, this epoch only
        self._baseline: float | None = None
        self._reply_tokens: float | None = None  # EWMA of reply length, to turn per-token excess into seconds
        self._reply_seconds: float | None = None  # EWMA of a reply's duration, for the hang threshold
        self._slow_replies = 0  # replies in a row over both latency thresholds
        self._normal_started = -math.inf  # when the latest call that answered normally started
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._running: collections.OrderedDict[ConcurrencySlot, None] = collections.OrderedDict()  # in start order
        self._hung = 0
        self._hang_timer: asyncio.TimerHandle | None = None
        self._hang_loop: asyncio.AbstractEventLoop | None = None  # a timer from a closed loop never fires
        self.lag = LoopLag()  # the client's own event-loop lag, taken off latencies

    # ------------------------------------------------------------------ slots

    async def acquire(self) -> ConcurrencySlot:
        """Wait for a free slot (and for any overload pause to pass), then take it."""
        while (pause := self._paused_until - _now()) > 0:
            await asyncio.sleep(pause)
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return self._start()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        self._watch_for_hangs()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # a slot was handed over just as we left
                self.in_flight -= 1
                self._wake()
            elif future in self._waiters:
                self._waiters.remove(future)
            raise
        return self._start()

    def _start(self) -> ConcurrencySlot:
        slot = ConcurrencySlot(self, self._epoch)
        self._running[slot] = None
        self.lag.watch(self._running.__len__)  # ticks while any call runs
        return slot

    def release(self, slot: ConcurrencySlot | None = None) -> None:
        """Give a slot back and hand it to the next waiter (a hung slot was already given back)."""
        if slot is not None:
            if slot.released:
                return
            slot.released = True
            self._running.pop(slot, None)
            if slot.hung:
                self._hung -= 1
                if self._waiters:  # room to let go of another hung call: watch again
                    self._watch_for_hangs()
                return
        self.in_flight -= 1
        self._wake()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[ConcurrencySlot]:
        """``async with controller.slot() as slot:`` acquire, run, report via `slot`, release."""
        held = await self.acquire()
        try:
            yield held
        finally:
            self.release(held)

    def _wake(self) -> None:
        # Slots are handed over (in_flight counted here) so a woken waiter cannot lose a race.
        if _now() < self._paused_until:
            return
        while self._waiters and self.in_flight < self.limit:
            future = self._waiters.popleft()
            if not future.done():
                self.in_flight += 1
                future.set_result(None)

    # ------------------------------------------------------------------ hung calls

    def hang_threshold(self) -> float | None:
        """Seconds after which a running call stops counting in flight; None when disabled."""
        if self.hang_factor is None:
            return None
        return max(self.hang_floor, self.hang_factor * (self._reply_seconds or 0.0))

    def _watch_for_hangs(self) -> None:
        """While callers wait, check the oldest running call at the moment it would count as hung."""
        loop = asyncio.get_running_loop()
        if self._hang_timer is not None and self._hang_loop is loop:
            return  # one timer per controller, however many callers wait
        threshold = self.hang_threshold()
        if threshold is None or not self._running or self._hung >= self.max_hung:
            return  # at max_hung, the next hung call that ends re-arms the watch (in `release`)
        oldest = next(iter(self._running))
        due = loop.time() + max(0.0, threshold - self._served(oldest))
        self._hang_timer, self._hang_loop = loop.call_at(due, self._let_go_of_hung_calls), loop

    def _served(self, slot: ConcurrencySlot) -> float:
        """Seconds `slot`'s call has waited on the server: its time so far less the client's own loop lag.

        A client saturated by its own CPU makes every call slow; those calls are late, not hung (as
        the latency rule, hang detection must see the server, not the client).
        """
        return _now() - slot.started - (self.lag.clock() - slot.lag_start)

    def _let_go_of_hung_calls(self) -> None:
        self._hang_timer = None
        threshold = self.hang_threshold()
        if threshold is None:
            return
        while self._running and self._hung < self.max_hung:
            oldest = next(iter(self._running))
            if threshold - self._served(oldest) > EARLY:
                break
            self._running.popitem(last=False)
            oldest.hung = True
            self._hung += 1
            self.in_flight -= 1
        self._wake()
        if self._waiters:
            self._watch_for_hangs()

    # ------------------------------------------------------------------ outcomes

    def _on_success(self, slot: ConcurrencySlot, seconds: float, tokens: int, server_seconds: float | None = None) -> None:
        alpha, threshold = self.latency_smoothing, self.hang_threshold()
        served = seconds if server_seconds is None else server_seconds  # hangs are the server's, as in `_served`
        if not slot.hung and (threshold is None or served < threshold):  # a hang that ended is not a typical reply
            self._reply_seconds = served if self._reply_seconds is None else alpha * served + (1 - alpha) * self._reply_seconds
        # A hang that ended stays out of the latency average; it counts as a slow reply only when no
        # call started after it has answered normally: then the server slowed down for everyone.
        ended_hang = slot.hung or (threshold is not None and served >= threshold)
        if not ended_hang:
            self._normal_started = max(self._normal_started, slot.started)
            latency = served / tokens
            self._baseline = latency if self._baseline is None else min(self._baseline * (1 + self.baseline_drift), latency)
        if slot.epoch != self._epoch:
            return  # started under a higher limit: says nothing about the current one
        if not ended_hang:
            self._latency = latency if self._latency is None else alpha * latency + (1 - alpha) * self._latency
            self._reply_tokens = tokens if self._reply_tokens is None else alpha * tokens + (1 - alpha) * self._reply_tokens
        if (ended_hang and slot.started > self._normal_started) or self._latency_is_high():
            self._slow_replies += 1
            if self._slow_replies >= self.latency_window:
                self._cut(self.latency_decrease_factor)
                return
        else:
            self._slow_replies = 0
        self._on_completion(slot, overloaded=False)

    def _on_completion(self, slot: ConcurrencySlot, *, overloaded: bool, retry_after: float | None = None) -> None:
        if slot.epoch != self._epoch:
            return
        self._window_done += 1
        if overloaded:
            self._window_overloads += 1
            if retry_after and retry_after > 0:
                self._retry_until = max(self._retry_until, _now() + retry_after)
                overloads, done = self._window_overloads, self._window_done
                # Judged after every reply, so it must be sure (4 sigma): a needless pause costs a
                # whole Retry-After of throughput.
                if overloads >= 3 and overloads > max(self.max_background * done, self._overload_threshold(done, 4.0)):
                    # Most calls are refused: the server is turning away what it cannot take. New
                    # calls wait the Retry-After out; refusals come back at once, so a limit on
                    # calls in flight alone would let them straight back in.
                    if self._retry_until > self._paused_until:
                        self._pause_until(self._retry_until)
        if self._window_done >= self._window_size:
            self._close_window()

    def _overload_threshold(self, n: int, sigmas: float = 2.0) -> float:
        """Overload replies in a window of `n` that the background share explains (with `sigmas` of noise)."""
        b = self.background
        return n * (b + self.overload_margin) + sigmas * math.sqrt(n * b * (1.0 - b)) + 1.0

    def _close_window(self) -> None:
        done, overloads = self._window_done, self._window_overloads
        share = overloads / done
        checking, self._checking = self._checking, None
        verdict = None
        if checking is not None:
            verdict = self._judge_cut(checking, share)
            if verdict != "load":
                # The share did not fall as it would have if load caused it (or the window is too small to
                # tell, which only happens at shares too low to matter): these replies are background.
                self.background = min(self.max_background, (checking[0] + share) / 2)
                self.restores += 1
                self._set_limit(checking[1])
                self._new_window()
                return
            self.background = min(self.background, share)  # what is left after a cut that helped
        if share > self.max_background or overloads > self._overload_threshold(done):
            if (share > self.max_background or verdict == "load") and self._retry_until > self._paused_until:
                # Overload confirmed: new calls wait the Retry-After out, as the server asked.
                self._pause_until(self._retry_until)
            self._cut(self.decrease_factor, checking=(share, self.limit))
            return
        if self.background > 0:  # follows a provider whose random share changes (or goes away)
            self.background += 0.1 * (share - self.background)
        if not self._latency_is_high():
            self._set_limit(self.limit + 1)
        self._new_window()

    def _judge_cut(self, checking: tuple[float, int], share: float) -> str:
        """Was the last overload cut (from `limit_before`, at `share_before`) about "load" or "random" 429s?

        If the server refuses what lies above a fixed capacity, the calls it accepts stay the same
        when the limit falls, so the share falls to ``1 - (1 - before) * limit_before / limit``;
        if its 429s are random, the share stays where it was; the midpoint decides. When the two
        predictions lie within the window's noise of each other (low shares, small windows), the
        window cannot tell them apart: "unclear", which the caller treats as random, since a
        share that low costs little either way and a needless cut costs a window at 0.75.
        """
        share_before, limit_before = checking
        if share_before > self.max_background:
            return "load"
        if_load = max(0.0, 1.0 - (1.0 - share_before) * limit_before / self.limit)
        noise = 2.0 * math.sqrt(share_before * (1.0 - share_before) / self._window_done)
        if share_before - if_load < noise:
            return "unclear"
        return "random" if share > (if_load + share_before) / 2 else "load"

    def _pause_until(self, until: float) -> None:
        self._paused_until = until
        loop = asyncio.get_running_loop()
        if self._pause_timer is None or self._pause_loop is not loop:
            self._pause_timer, self._pause_loop = loop.call_at(until, self._end_pause), loop

    def _end_pause(self) -> None:
        # Timers may fire a little early (within the clock's resolution): end the pause here, not
        # by comparing clocks in `_wake`, or the waiters could be left asleep with nothing to wake them.
        self._pause_timer = None
        if self._paused_until - _now() > EARLY:
            self._pause_until(self._paused_until)  # extended meanwhile
            return
        self._paused_until = 0.0
        self._wake()

    def _new_window(self) -> None:
        self._window_done = self._window_overloads = 0
        self._retry_until = 0.0
        self._window_size = max(self.limit, self.min_window)

    def _set_limit(self, limit: int) -> None:
        self.limit = max(self.floor, min(self.ceiling, limit))
        self.lowest_limit = min(self.lowest_limit, self.limit)
        self._wake()

    def _cut(self, factor: float, *, checking: tuple[float, int] | None = None) -> None:
        self._epoch += 1
        self.decreases += 1
        self._checking = checking
        self._latency = None  # measure the new epoch afresh
        self._slow_replies = 0
        self._set_limit(min(self.limit - 1, int(self.limit * factor)))
        self._new_window()

    def _latency_is_high(self) -> bool:
        """Smoothed latency above `latency_factor` x baseline, and by at least `latency_floor` seconds."""
        if self.latency_factor is None or self._latency is None or self._baseline is None:
            return False
        excess_seconds = (self._latency - self._baseline) * (self._reply_tokens or 1.0)
        return self._latency > self.latency_factor * self._baseline and excess_seconds >= self.latency_floor

    def stats(self) -> dict[str, Any]:
        """Current limit, calls in flight, waiting and hung, cuts so far, latencies in seconds."""
        return {
            "concurrency_limit": self.limit, "concurrency_ceiling": self.ceiling, "in_flight": self.in_flight,
            "waiting": len(self._waiters), "hung": self._hung,
            "concurrency_decreases": self.decreases, "concurrency_restores": self.restores,
            "lowest_limit": self.lowest_limit, "background_overload_share": round(self.background, 4),
            "latency_ewma": self._latency, "latency_baseline": self._baseline,
        }


__all__ = ["AdaptiveConcurrency", "ConcurrencySlot"]
