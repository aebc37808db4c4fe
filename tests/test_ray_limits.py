"""Limits hold for the whole Ray cluster: a shared rate cap, a 401 and a budget stop the run as locally.

Loopback fault servers only; the session's local cluster (tests/_ray_helpers.py); 2 workers each.
"""

from __future__ import annotations

import pytest

from orca_math.engine.config import EngineConfig
from orca_math.engine.items import RunStopped
from orca_math.models import ModelRef
from orca_math.pipeline import Pipeline, Solve
from orca_math.testing.fault_server import FaultConfig, FaultServer
from tests._ray_helpers import checkpoint_lines, ray_cluster, ray_executor, write_seeds

pytestmark = [pytest.mark.timeout(180)]
__all__ = ["ray_cluster"]


def fault_model(base_url: str, **options):
    """The fault server's model as a `ModelRef`: the driver's engine and each Ray worker build their own client."""
    return ModelRef(base_url, {"model": "fault-model", **options})


def fast_retries():
    from orca_math.engine.client import RetryPolicy

    return RetryPolicy(initial_wait=0.01, max_wait=0.2, jitter=0.01)


def test_a_cluster_rate_cap_keeps_two_workers_under_the_servers_capacity(ray_cluster, tmp_path):
    # The server admits 100 requests in any one second and answers 429 above. The cluster's cap is
    # 97/s: split between the 2 workers, they stay under the capacity together. Unsplit, each worker
    # would pace at 97/s, and the pair would send up to 194/s: far more 429s, and a pace above the
    # cap (both checks are upper bounds, so a slow, loaded machine cannot fail them).
    n, cap = 400, 97
    seeds = write_seeds(tmp_path / "seeds.jsonl", n)
    with FaultServer(FaultConfig(capacity_rps=100, base_latency=0.01, retry_after=0.2)) as server:
        model = fault_model(server.base_url)
        config = EngineConfig.of(concurrency=32, progress=False, cache=False, requests_per_minute=cap * 60, retry=fast_retries())
        result = Pipeline([Solve()], model=model, engine=config, executor=ray_executor()).run_sync(seeds, out=tmp_path / "out")
        requests = server.chat_requests()
    rate_limited = sum(r.outcome == "429" for r in requests)
    assert result.funnel.final_rows == n
    assert rate_limited < 0.05 * len(requests), (rate_limited, len(requests))
    times = sorted(r.time for r in requests)
    busiest = max(sum(1 for t in times[i:i + 2 * cap] if t - start < 1.0) for i, start in enumerate(times))
    assert busiest <= 100 + 5, busiest  # no one-second window carried much more than the capacity
    assert len(requests) / (times[-1] - times[0]) <= 1.1 * cap  # the pair's pace: the cluster's cap, not twice it


def test_a_rejected_key_stops_the_run_after_one_request_per_worker_in_one_sentence(ray_cluster, tmp_path):
    seeds = write_seeds(tmp_path / "seeds.jsonl", 40)
    with FaultServer(FaultConfig(api_key="sk-right")) as server:
        model = fault_model(server.base_url, api_key="sk-wrong-secret")
        config = EngineConfig.of(concurrency=8, progress=False, cache=False, retry=fast_retries())
        with pytest.raises(RunStopped) as locally:
            Pipeline([Solve()], model=model, engine=config).run_sync(seeds, out=tmp_path / "local")
        before = len(server.chat_requests())
        with pytest.raises(RunStopped) as stopped:
            Pipeline([Solve()], model=model, engine=config, executor=ray_executor()).run_sync(seeds, out=tmp_path / "out")
        requests = server.chat_requests()[before:]
    message = str(stopped.value)
    assert message == str(locally.value)  # the same sentence as in one process
    assert len(requests) <= 2, len(requests)  # at most one per worker
    assert "401" in message or "key" in message.lower(), message
    assert "\n" not in message.strip() and "sk-wrong-secret" not in message
    assert not any("sk-wrong-secret" in p.read_text(errors="ignore") for p in (tmp_path / "out").rglob("*") if p.is_file())


def test_a_budget_stops_the_cluster_under_the_budget(ray_cluster, tmp_path):
    prices = {"fault-model": (10_000.0, 10_000.0)}  # USD per million tokens: about a cent a call
    seeds = write_seeds(tmp_path / "seeds.jsonl", 80)
    with FaultServer(FaultConfig(base_latency=0.01)) as server:
        model = fault_model(server.base_url)
        probe = Pipeline([Solve()], model=model, engine=EngineConfig.of(concurrency=1, progress=False, cache=False, prices=prices))
        per_call = probe.run_sync(write_seeds(tmp_path / "probe.jsonl", 1, prefix="Probe: "), out=tmp_path / "probe").funnel.cost_usd
        # Each call holds its worst case (512 reply tokens, about six real calls) until it settles, and a
        # worker may stop with up to one worst case of its lease unspent: 40 calls' worth leaves room for
        # at least 5 calls on any schedule and still stops well before the 80 seeds.
        budget = 40.5 * per_call
        before = len(server.chat_requests())
        config = EngineConfig.of(concurrency=4, progress=False, cache=False, prices=prices, budget_usd=budget, retry=fast_retries())
        with pytest.raises(RunStopped, match="budget"):
            Pipeline([Solve()], model=model, engine=config, executor=ray_executor()).run_sync(seeds, out=tmp_path / "out")
        paid = len(server.chat_requests()) - before
    lines = checkpoint_lines(tmp_path / "out", "solve")
    spent = sum(line["usage"]["prompt_tokens"] + line["usage"]["completion_tokens"] for line in lines) * 10_000 / 1e6
    assert {line["status"] for line in lines} == {"ok"} and 5 <= len(lines) < 80, len(lines)
    assert spent <= budget
    assert paid == len(lines)  # every call paid for was kept
