"""Recipe sections that several kinds share: seeds, the model, the engine, cost, executor, batch mode.

Each field's default is the default of the flag it stands for, so a recipe that leaves a field out
means what a command line that leaves the flag out means.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from orca_math.models.specs import spec_forms
from orca_math.recipes.fields import Section, option
from orca_math.registries import check_backend_name, check_executor_name


def timeout_option() -> Any:
    """The `--timeout` field, for every recipe section that calls a model."""
    return option(None, "give up on one attempt of a model request after SECONDS and retry it (default 300); a server "
                  "that never answers then fails within about SECONDS x 8 attempts", flag="--timeout",
                  metavar="SECONDS", gt=0)


def cache_option() -> Any:
    """The `--no-cache` field (the response cache is on unless it is given)."""
    return option(True, "the response cache in the output folder, which keeps a rerun from paying twice for a prompt",
                  flag="--no-cache", invert=True)


def cache_file_option() -> Any:
    """The `--cache-file` field: where the response cache lives, when not in the output folder."""
    return option(None, "keep the response cache in this file instead of OUT/cache.sqlite (share one between runs; "
                  "does not change the run key)", flag="--cache-file", metavar="PATH")


def cache_setting(cache: bool, cache_file: str | None) -> bool | Path:
    """`EngineConfig.cache` from the two fields: False, the file's path, or True (OUT/cache.sqlite)."""
    if not cache:
        return False
    return Path(cache_file).expanduser() if cache_file else True


def response_cache(out: str | Path, cache: bool, cache_file: str | None) -> Any:
    """The `ResponseCache` the two fields mean for a run in `out` (OUT/cache.sqlite or the file), or None."""
    setting = cache_setting(cache, cache_file)
    if setting is False:
        return None
    from orca_math.engine.cache import ResponseCache
    from orca_math.engine.folder import CACHE_FILE

    return ResponseCache(Path(out) / CACHE_FILE if setting is True else setting)


def model_ref(spec: str, name: str | None, base_url: str | None) -> Any:
    """The `ModelRef` of a model section's (or the command line's) spec, served model name and base URL."""
    from orca_math.models import ModelRef

    return ModelRef(spec, {k: v for k, v in (("model", name), ("base_url", base_url)) if v})


class SeedSection(Section):
    """Where the problems come from and how their columns are read."""

    path: str = option(..., "seed problems with answers: .jsonl, .csv, .parquet, a saved dataset folder, or an HF "
                       "dataset name", flag="--seeds", min_length=1)
    limit: int | None = option(None, "use only the first N seeds (default: all)", flag="--limit", metavar="N", ge=1)
    question_column: str | None = option(None, "the seed column holding the problem (default: detected)",
                                         flag="--question-column")
    answer_column: str | None = option(None, "the seed column holding the answer (default: detected)",
                                       flag="--answer-column")
    id_column: str | None = option(None, "the seed column holding a unique id (default: derived)", flag="--id-column")
    split: str = option("train", "split of an HF dataset", flag="--split", min_length=1)
    max_seed_chars: int | None = option(None, "refuse a seed whose question and answer hold more than N characters "
                                        "(default 50,000), naming its line; does not change the run key",
                                        flag="--max-seed-chars", metavar="N", ge=1)


class ModelSection(Section):
    """The model every stage calls. API keys never go here: they come from the environment."""

    spec: str = option("local", f"model spec: {spec_forms()} such as http://127.0.0.1:8000/v1, or a kind another "
                       "installed package registers ('local' is the embedded SmolLM2-135M, offline)", flag="--model",
                       min_length=1)
    name: str | None = option(None, "model name to request from a server URL (default: the first one it serves)",
                              flag="--model-name")
    base_url: str | None = option(None, "base URL for an 'openai:<model>' spec (e.g. a vLLM server)", flag="--base-url")

    def ref(self) -> Any:
        """The `ModelRef` this section names (its spec, and the served model's name and base URL when set)."""
        return model_ref(self.spec, self.name, self.base_url)


class EngineSection(Section):
    """How model calls are made: concurrency, caching, rate caps and the per-attempt timeout."""

    concurrency: int = option(16, "requests in flight at once (the adaptive limit's ceiling); does not change the "
                              "run key", flag="--concurrency", ge=1)
    cache: bool = cache_option()
    cache_file: str | None = cache_file_option()
    timeout: float | None = timeout_option()
    rpm: float | None = option(None, "cap requests per minute (default: none; 429s still back off)", flag="--rpm",
                               gt=0)
    tpm: float | None = option(None, "cap tokens per minute (default: none)", flag="--tpm", gt=0)


class CostSection(Section):
    """Budget and prices: what a run may spend, and what each model costs."""

    budget_usd: float | None = option(None, "stop cleanly before a call could take this run's spending over X USD "
                                      "(finished work is kept; needs a price)", flag="--budget-usd", metavar="X", gt=0)
    prices: dict[str, tuple[float, float]] = option(
        {}, "USD per million input and output tokens for a model, e.g. my-model=0.5,1.5 on the command line, "
        "{my-model: [0.5, 1.5]} in a recipe; common OpenAI models have defaults", flag="--price", codec="prices",
        metavar="MODEL=IN,OUT")
    pilot: int | None = option(None, "with --dry-run and --target-rows: run the recipe for real on the first N seeds "
                               "(in OUT/pilot, cached for the real run), then project calls, tokens, cost (online, "
                               "batch, self-hosted) and time for the target, with a 90% range; writes "
                               "OUT/estimate.json (a recipe's pilot runs with `orca-math run --dry-run`; a run "
                               "without --dry-run leaves it out)", flag="--pilot", metavar="N", ge=1)
    hourly_usd: float | None = option(None, "with --pilot: what the self-hosted endpoint costs per hour, to price its "
                                      "projected time", flag="--hourly-usd", metavar="X", gt=0)
    completion_tokens: dict[str, int] = option(
        {}, "for dry runs: typical reply length of an agent, e.g. teacher=400 ({teacher: 400} in a recipe)",
        flag="--completion-tokens", codec="pairs", metavar="AGENT=N")


#: An executor name from `orca_math.registries.EXECUTORS` (built-in or a plug-in's).
RegisteredExecutor = Annotated[str, AfterValidator(check_executor_name)]
#: A batch backend name from `orca_math.registries.BATCH_BACKENDS` (built-in or a plug-in's), or "auto".
RegisteredBatchBackend = Annotated[str, AfterValidator(check_backend_name)]


class ExecutorSection(Section):
    """Where items run: this process, or a pool of Ray workers."""

    name: RegisteredExecutor = option("local", "local: this process; ray: a pool of Ray workers (see docs/ray.md)",
                                      flag="--executor", dest="executor", registry="executor")
    ray_address: str | None = option(None, "with the ray executor: 'auto' joins the cluster of `ray start --head` on "
                                     "this machine, ray://HOST:10001 a remote one (default: start a local cluster)",
                                     flag="--ray-address", metavar="ADDR")
    workers: int | None = option(None, "with the ray executor: worker actors (default: the cluster's CPUs, at most 8)",
                                 flag="--workers", metavar="N", ge=1)

    def build(self) -> Any:
        """The `Executor` these fields describe: None for local, else the registered one (a plug-in's too).

        Raises:
            ConfigError: a Ray setting without the ray executor, or an executor that takes neither setting.
        """
        from orca_math.engine.executors.registry import make_executor
        from orca_math.errors import ConfigError

        settings = {key: value for key, value in (("address", self.ray_address), ("workers", self.workers)) if value}
        if self.name == "local":
            if settings:
                raise ConfigError("--ray-address and --workers (executor.ray_address, executor.workers) need "
                                  "--executor ray (executor.name: ray).")
            return None
        try:
            return make_executor(self.name, **settings)
        except TypeError as exc:  # a plug-in executor that takes neither setting
            if not settings:
                raise
            raise ConfigError(f"--executor {self.name} does not take --ray-address or --workers ({exc}).") from None


class BatchSection(Section):
    """Batch mode: the same calls, sent through the provider's batch API at its batch price (docs/batch.md)."""

    enabled: bool = option(False, "send model calls through the provider's batch API at its batch price (see "
                           "docs/batch.md)", flag="--batch", dest="batch")
    backend: RegisteredBatchBackend = option(
        "auto", "the batch API: the model's provider (auto), or 'vllm' for vllm run-batch on this machine",
        flag="--batch-backend", registry="batch backend")
    max_open: int | None = option(None, "batches open at the provider at once (default 8)", flag="--batch-max-open",
                                  metavar="N", ge=1)
    max_requests: int | None = option(None, "requests per batch (default: the provider's limit, 50,000 for OpenAI)",
                                      flag="--batch-max-requests", metavar="N", ge=1)
    max_tokens: int | None = option(None, "prompt tokens per batch, for a tier's enqueued-token limit (default: no "
                                    "cap)", flag="--batch-max-tokens", metavar="N", ge=1)
    poll_seconds: float | None = option(None, "seconds between polls at first; it backs off to 10 minutes (default 60)",
                                        flag="--batch-poll-seconds", metavar="S", gt=0)
    price_multiplier: float | None = option(None, "batch price as a share of the online price (default 0.5)",
                                            flag="--batch-price-multiplier", metavar="X", gt=0)
    max_attempts: int | None = option(None, "times a request is sent when its batch expires or fails (default 3)",
                                      flag="--batch-max-attempts", metavar="N", ge=1)
    vllm_model: str | None = option(None, "with the vllm backend: the --model of vllm run-batch (default: the model's "
                                    "name)", flag="--batch-vllm-model", metavar="MODEL")

    def options(self) -> Any:
        """The engine's `BatchOptions` for these fields, or None when batch mode is off."""
        if not self.enabled:
            return None
        from orca_math.engine.batch import BatchOptions

        values = {name: getattr(self, name) for name in ("backend", "max_open", "max_requests", "max_tokens",
                                                         "poll_seconds", "price_multiplier", "max_attempts",
                                                         "vllm_model") if getattr(self, name) is not None}
        if "poll_seconds" in values:  # backs off from the first interval to at most 10 minutes
            values["max_poll_seconds"] = max(values["poll_seconds"], min(600.0, values["poll_seconds"] * 10))
        return BatchOptions(**values)


class Recorded(Section):
    """What a run folder's recipe.yaml adds to a recipe: what the run used, for reproducing and diffing it.

    Written by the run; ignored when a recipe is run, except that a changed template is reported.
    """

    orca_math_version: str = Field(description="the orca-math version that ran the recipe")
    templates: dict[str, str] = Field(default_factory=dict,
                                      description="hash of each agent's card and prompt template, by agent name")
    run_key: str | None = Field(None, description="the run key of the run (generate and eval)")


__all__ = ["cache_file_option", "cache_option", "cache_setting", "model_ref", "response_cache", "timeout_option", "BatchSection", "CostSection", "EngineSection", "ExecutorSection", "ModelSection", "Recorded", "SeedSection"]
