"""Curation policies over the `difficulty` band: keep some bands, harden the easy problems again.

Policies are plain data (`Curation`), parsed from ``--curate`` values, and become stages placed
after `Difficulty`:

* ``keep:hard,medium`` — `KeepBands`: rows in other bands are drops with the reason
  ``difficulty_band``.
* ``harden-easy`` or ``harden-easy:R`` — up to R extra rounds (default 1). Each round sends the
  rows the student found easy to the Suggester and Editor once more (`HardenEasy`); the new problem
  is then solved, verified, filtered and measured like any other (the same stages again, `Again`),
  and, if the student finds it easy too, goes back in the next round. The easy row itself stays
  (it is verified data); combine with ``keep:`` to drop it.

    stages = [*default_stages(), Difficulty("vllm:ckpt/m1"), *curation_stages(Curation.parse(["harden-easy:2", "keep:hard,medium"]), ...)]
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from orca_math.engine.items import ItemFailedError, ItemResult
from orca_math.engine.stage import Row, Stage
from orca_math.errors import ConfigError
from orca_math.pipeline.difficulty import BANDS
from orca_math.pipeline.generation import Harden
from orca_math.records import Drop, Problem

#: The field that marks rows made by a harden-easy round (its number): the repeated stages act on them only.
CURATION_ROUND = "curation_round"


@dataclass(frozen=True)
class Curation:
    """What ``--curate`` asked for.

    Attributes:
        keep: the bands to keep (None keeps every band).
        harden_easy: extra Suggester/Editor rounds for easy problems (0: none).
    """

    keep: tuple[str, ...] | None = None
    harden_easy: int = 0

    @classmethod
    def parse(cls, values: Iterable[str]) -> Curation:
        """Parse ``--curate`` values: ``keep:BAND,...``, ``harden-easy`` or ``harden-easy:R``.

        Raises:
            ConfigError: an unknown policy or band, or a bad round count, in one sentence.
        """
        keep: tuple[str, ...] | None = None
        rounds = 0
        for value in values:
            name, _, rest = value.partition(":")
            if name == "keep":
                bands = tuple(band.strip() for band in rest.split(",") if band.strip())
                unknown = [band for band in bands if band not in BANDS]
                if not bands or unknown:
                    raise ConfigError(f"--curate keep: takes bands from {', '.join(BANDS)}, e.g. keep:hard,medium; "
                                      f"got {value!r}.")
                keep = bands
            elif name == "harden-easy":
                if rest and (not rest.isdigit() or int(rest) < 1):
                    raise ConfigError(f"--curate harden-easy:R takes a whole number of rounds of at least 1, not {rest!r}.")
                rounds = int(rest) if rest else 1
            else:
                hint = f" ({name} is the learning loop's: orca-math learn --curate {name})" if name in ("prop2diff", "uniform") else ""
                raise ConfigError(f"unknown --curate policy {value!r}; use keep:BAND,..., harden-easy or harden-easy:R{hint}.")
        return cls(keep=keep, harden_easy=rounds)

    @property
    def active(self) -> bool:
        return self.keep is not None or self.harden_easy > 0


class KeepBands(Stage):
    """Keeps rows whose `difficulty` band is listed; the others are drops with the reason ``difficulty_band``.

    A row with no band (its difficulty was never measured) is dropped too, as ``difficulty_unknown``.
    """

    name = "keep_bands"
    reads = ("id", "difficulty")
    calls_model = False

    def __init__(self, bands: Sequence[str]) -> None:
        super().__init__()
        unknown = [band for band in bands if band not in BANDS]
        if not bands or unknown:
            raise ConfigError(f"KeepBands takes bands from {', '.join(BANDS)}, not {list(bands)!r}.")
        self.bands = tuple(bands)

    def params(self) -> dict[str, Any]:
        return {"bands": list(self.bands)}

    async def process(self, row: Row) -> ItemResult:
        band = row.get("difficulty")
        if band in self.bands:
            return ItemResult(outputs=[row])
        reason = "difficulty_unknown" if band is None else "difficulty_band"
        detail = f"{band} (pass rate {row.get('pass_rate')}); keeping {', '.join(self.bands)}"
        return ItemResult(drops=[Drop(id=row["id"], stage=self.name, reason=reason, detail=detail, row=row).to_row()])


class HardenEasy(Harden):
    """One more Suggester/Editor round for rows the student found easy (round `curation_round`).

    Rows in other bands, and easy rows that an earlier round already hardened, pass on unchanged.
    The new problem's id is ``<id>-e<round>``; it carries ``curation_round`` so that the stages
    repeated after this one (`Again`) act on it alone.
    """

    writes = (*Harden.writes, CURATION_ROUND)

    def __init__(self, curation_round: int, *, suggester: Any = None, editor: Any = None, model: Any = None) -> None:
        super().__init__(rounds=1, keep="all", apply_to="all", suggester=suggester, editor=editor, model=model)
        self.curation_round = curation_round
        self.name = f"harden_easy{curation_round}"

    def params(self) -> dict[str, Any]:
        return {**super().params(), "curation_round": self.curation_round}

    async def process(self, row: Row) -> ItemResult:
        # Easy rows from the generation stages (no round yet), or from the round before this one.
        if row.get("difficulty") != "easy" or (row.get(CURATION_ROUND) or 0) != self.curation_round - 1:
            return ItemResult(outputs=[row])
        try:
            suggestions = await self.suggester.call(question=row["question"], n_suggestions=self.n_suggestions)
            edited = await self.editor.call(question=row["question"], suggestions=suggestions.output.suggestions)
        except ItemFailedError as exc:  # the easy row stays; its failed round is a drop with the reason
            drop = Drop(id=f"{row['id']}-e{self.curation_round}", stage=self.name, reason="hardening_failed",
                        detail=exc.reason, row={"parent_id": row["id"]}).to_row()
            return ItemResult(outputs=[row], drops=[drop], usage=exc.usage)
        new = Problem(id=f"{row['id']}-e{self.curation_round}", question=edited.output.question, origin=self.editor.origin,
                      parent_id=row["id"], round=int(row.get("round") or 0) + 1,
                      metadata={"suggestions": suggestions.output.suggestions,
                                "hardened_because": f"easy for the student (pass rate {row.get('pass_rate')})"}).to_row()
        new[CURATION_ROUND] = self.curation_round
        return ItemResult(outputs=[row, new], usage=suggestions.usage + edited.usage)


class Again(Stage):
    """A stage repeated for the problems of one harden-easy round; other rows pass on unchanged.

    Args:
        stage: the stage to repeat (a fresh copy is made, so the original keeps its own state).
        curation_round: the round whose rows it processes.
    """

    def __init__(self, stage: Stage, curation_round: int) -> None:
        inner = copy.deepcopy(stage)
        super().__init__(model=inner.model_spec)
        self.inner = inner
        self.curation_round = curation_round
        self.name = f"{inner.name}_again{curation_round}"
        self.reads, self.writes, self.columns = inner.reads, inner.writes, inner.columns
        self.calls_model = inner.calls_model
        self.requires_answers = inner.requires_answers
        self.model_load_options = dict(getattr(inner, "model_load_options", None) or {})

    def params(self) -> dict[str, Any]:
        return {"curation_round": self.curation_round, "stage": self.inner.fingerprint()}

    def load(self) -> None:
        self.inner.bind(self.model)

    async def unload(self) -> None:
        await self.inner.close()

    async def process(self, row: Row) -> ItemResult:
        if row.get(CURATION_ROUND) != self.curation_round:
            return ItemResult(outputs=[row])
        return await self.inner.process(row)

    def estimate(self, population, context):
        return self.inner.estimate(population, context)


def curation_stages(curation: Curation, stages: Sequence[Stage]) -> list[Stage]:
    """The stages `curation` adds after the pipeline's `stages` (which must end with `Difficulty`).

    A harden-easy round repeats the stages after the last hardening stage (solve, verify, filter and
    the difficulty measure) for the new problems; dedup and decontamination are not repeated.

    Raises:
        ConfigError: no `Difficulty` stage to read bands from.
    """
    if not curation.active:
        return []
    names = [stage.name for stage in stages]
    if "difficulty" not in names:
        raise ConfigError("--curate needs difficulty bands: add --student SPEC (a Difficulty stage) to measure them.")
    solving = [stage for stage in stages if stage.name in ("solve", "verify", "filter", "difficulty")]
    added: list[Stage] = []
    for curation_round in range(1, curation.harden_easy + 1):
        added.append(HardenEasy(curation_round))
        added += [Again(stage, curation_round) for stage in solving]
    if curation.keep is not None:
        added.append(KeepBands(curation.keep))
    return added


__all__ = ["CURATION_ROUND", "Again", "Curation", "HardenEasy", "KeepBands", "curation_stages"]
