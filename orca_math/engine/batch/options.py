"""`BatchOptions`: which batch API, how requests are split and polled, retries, and the batch price."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from orca_math.engine.costs import Price, PriceTable
from orca_math.options import options_dataclass
from orca_math.registries import backend_names, check_backend_name

#: The built-in backend names and "auto" (`orca_math.engine.batch.backends` has the plug-ins too).
BACKENDS = tuple(backend_names(discover=False))


@options_dataclass
class BatchOptions:
    """How batch mode sends calls.

    Attributes:
        backend: "auto" picks the model's provider (OpenAI, Azure OpenAI, an OpenAI-compatible
            URL that serves ``/v1/batches``, or Anthropic); "vllm" runs ``vllm run-batch`` here;
            any other name a package registered (`orca_math.engine.batch.backends`).
        price_multiplier: batch price / online price (0.5: the providers' batch discount).
        model_price_multipliers: the multiplier of particular models, by name prefix.
        max_requests: requests per batch (default: the provider's limit, 50,000 or 100,000).
        max_bytes: bytes of input per batch (default: the provider's limit, 200 or 256 MB).
        max_tokens: prompt tokens per batch (a tier's enqueued-token limit); None: no cap.
        max_open: batches open at the provider at once; more wait for one to end.
        poll_seconds: seconds between polls at first (providers ask for no more than once a minute).
        max_poll_seconds: the poll interval grows by half after each poll with no change, up to this.
        max_attempts: how often a request is sent when its batch expires, fails or is cancelled.
        completion_window: the OpenAI batch window ("24h", the only one offered).
        vllm_command: the command that runs a batch with the "vllm" backend.
        vllm_model: its ``--model`` (default: the model's name).
        vllm_args: more arguments for it (``--tensor-parallel-size 2`` ...).
    """

    backend: Annotated[str, AfterValidator(check_backend_name)] = "auto"
    price_multiplier: Annotated[float, Field(gt=0, le=1)] = 0.5
    model_price_multipliers: dict[str, Annotated[float, Field(gt=0, le=1)]] = Field(default_factory=dict)
    max_requests: Annotated[int, Field(ge=1)] | None = None
    max_bytes: Annotated[int, Field(ge=1024)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_open: Annotated[int, Field(ge=1)] = 8
    poll_seconds: Annotated[float, Field(gt=0)] = 60.0
    max_poll_seconds: Annotated[float, Field(gt=0)] = 600.0
    max_attempts: Annotated[int, Field(ge=1)] = 3
    completion_window: str = "24h"
    vllm_command: tuple[str, ...] = ("vllm", "run-batch")
    vllm_model: str | None = None
    vllm_args: tuple[str, ...] = ()

    def multiplier(self, model: str) -> float:
        """The batch price multiplier of `model` (its longest listed prefix, else `price_multiplier`)."""
        matches = [name for name in self.model_price_multipliers if model.startswith(name)]
        return self.model_price_multipliers[max(matches, key=len)] if matches else self.price_multiplier


class BatchPrices(PriceTable):
    """Online prices times the batch multiplier: what the funnel, the budget and the card show in batch mode.

    Args:
        online: the online price table.
        options: the batch options (their multipliers).
    """

    def __init__(self, online: PriceTable, options: BatchOptions) -> None:  # noqa: D107 -- no table of its own
        self.online = online
        self.options = options

    def price(self, model: str) -> Price | None:
        price = self.online.price(model)
        if price is None:
            return None
        factor = self.options.multiplier(model)
        return Price(price.input_per_million * factor, price.output_per_million * factor)


__all__ = ["BACKENDS", "BatchOptions", "BatchPrices"]
