"""The Hugging Face dataset card (`README.md`) of a generated dataset.

The card says how the data was made (seeds, stages and their parameters, models, agent card and
template hashes, library version), what it holds (rows per origin and round), what was lost on the
way (the funnel, drops by reason, decontamination) and what each column means. The YAML front
matter comes from `huggingface_hub.DatasetCardData`, so the Hub reads it as it reads any card.

Nothing secret may reach a card: keys named like credentials are dropped from the config, and the
finished text is scrubbed of credential-looking strings and of the values of credential
environment variables.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from orca_math.engine.folder import OutputFolder
from orca_math.errors import ConfigError
from orca_math.models.errors import SECRET_NAME
from orca_math.records import DatasetRow, column_descriptions

DEFAULT_LICENSE = "other"
TASK_CATEGORIES = ["text-generation", "question-answering"]
#: The Hub layout `datasets.Dataset.push_to_hub` writes; the card's `configs` point at it.
HUB_DATA_FILES = "data/train-*"

#: Column -> description, read from `DatasetRow` (the one source of the dataset's columns).
COLUMN_DESCRIPTIONS = column_descriptions(DatasetRow)

_SECRET_PATTERNS = [
    re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}"),  # OpenAI-style keys
    re.compile(r"\bhf_[A-Za-z0-9]{16,}"),  # Hugging Face tokens
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),  # user:password@ in URLs
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._\-]{12,}"),
]
_LICENSE_ID = re.compile(r"^[a-z0-9][a-z0-9.\-+]*$")


def size_category(rows: int) -> str:
    """The Hub's size bucket for a row count (`n<1K`, `1K<n<10K`, ...)."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")]
    return next((label for bound, label in bounds if rows < bound), "10M<n<100M")


def scrub_secrets(text: str) -> str:
    """Replace credential-looking strings, and values of credential environment variables, by `<redacted>`."""
    for name, value in os.environ.items():
        if SECRET_NAME.search(name) and len(value) >= 8:
            text = text.replace(value, "<redacted>")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub("<redacted>", text)
    return text


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("<redacted>" if SECRET_NAME.search(str(k)) else _without_secrets(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def check_license(license: str | None) -> str:
    """The license id to put in the card; `other` when None.

    Raises:
        ValueError: the id is not a lowercase Hub license id such as `cc-by-4.0` or `mit`.
    """
    if license is None:
        return DEFAULT_LICENSE
    if not _LICENSE_ID.match(license):
        raise ConfigError(f"license {license!r} is not a Hub license id (lowercase, like 'mit', 'apache-2.0' or 'cc-by-4.0').")
    return license


def build_card(
    out_dir: str | Path,
    *,
    license: str | None = None,
    repo_id: str | None = None,
    summary: dict[str, Any] | None = None,
    manifest: dict[str, Any] | None = None,
) -> str:
    """The dataset card of a generation output folder, as Markdown with YAML front matter.

    Args:
        out_dir: the output folder of `orca-math generate` (holds `dataset/` and `summary.json`).
        license: a Hub license id; `other` when None, with a note in the card to set it.
        repo_id: the Hub repository, used in the title and the loading example.
        summary: the run summary, when it is not (yet) on disk.
        manifest: the run manifest, when it is not (yet) on disk.

    Raises:
        ValueError: a malformed license id.
        OutputFolderError: `out_dir` is not an output folder and no summary was given.
    """
    license_id = check_license(license)
    if summary is None:
        folder = OutputFolder.open(out_dir)
    else:
        folder = OutputFolder(Path(out_dir), summary, manifest)
    if manifest is not None:
        folder.manifest = manifest
    folder.manifest = _without_secrets(folder.manifest) if folder.manifest else folder.manifest
    dataset = folder.dataset()
    rows = len(dataset) if dataset is not None else int(folder.funnel.get("final_rows", 0))
    name = repo_id or Path(out_dir).resolve().name
    front = _front_matter(license_id, rows, name)
    sections = [
        _intro(folder, rows, name, repo_id, license_id),
        _how_made(folder),
        _contents(dataset),
        _funnel(folder),
        _drops(folder),
        _decontamination(folder),
        _columns(dataset, folder.summary.get("columns") or {}),
        _limitations(),
    ]
    body = "\n\n".join(section.strip() for section in sections) + "\n"
    return scrub_secrets(f"---\n{front}---\n\n{body}")


def _front_matter(license_id: str, rows: int, name: str) -> str:
    from huggingface_hub import DatasetCardData

    data = DatasetCardData(
        license=license_id,
        language=["en"],
        task_categories=TASK_CATEGORIES,
        size_categories=[size_category(rows)],
        pretty_name=name,
        tags=["math", "synthetic", "orca-math"],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": HUB_DATA_FILES}]}],
    )
    return data.to_yaml() + "\n"


def write_card(
    out_dir: str | Path,
    summary: dict[str, Any] | None = None,
    manifest: dict[str, Any] | None = None,
    *,
    license: str | None = None,
) -> list[Path]:
    """Write the card to `out_dir/README.md` and `out_dir/dataset/README.md`.

    Args:
        out_dir: the output folder.
        summary: the run summary (read from `summary.json` when None).
        manifest: the run manifest (read from the run folder when None).
        license: a Hub license id; `other` when None.

    Returns:
        The paths written.
    """
    out_dir = Path(out_dir)
    text = build_card(out_dir, license=license, summary=summary, manifest=manifest)
    paths = [out_dir / "README.md"]
    if (out_dir / "dataset").is_dir():
        paths.append(out_dir / "dataset" / "README.md")
    for path in paths:
        path.write_text(text, encoding="utf-8")
    return paths


def origin_counts(dataset) -> Counter:
    """Rows per (origin, round) of a dataset."""
    if dataset is None or "origin" not in dataset.column_names:
        return Counter()
    rounds = column_values(dataset, "round") if "round" in dataset.column_names else [0] * len(dataset)
    return Counter(zip(column_values(dataset, "origin"), rounds, strict=True))


def column_values(dataset, name: str) -> list[Any]:
    """A column of a `datasets.Dataset` as a list, converted from Arrow in one call.

    ``dataset[name]`` formats the values one row at a time: 0.1 ms a row for the card's few
    columns, more than a whole `solve` spends per problem elsewhere.
    """
    return dataset.with_format("arrow")[name].to_pylist()


def compact_json(value: Any) -> str:
    """Short one-line JSON for table cells."""
    return json.dumps(value, sort_keys=True, default=str).replace("|", "\\|")


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|").replace("\n", " ") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _intro(folder: OutputFolder, rows: int, name: str, repo_id: str | None, license_id: str) -> str:
    version = (folder.manifest or {}).get("library_version", "unknown")
    load = f'load_dataset("{repo_id}", split="train")' if repo_id else 'load_from_disk("dataset")  # the local copy'
    text = (
        f"# {name}\n\n"
        f"{rows} math word problems with step-by-step solutions, generated by "
        f"[orca-math](https://arxiv.org/abs/2402.14830)-style agents with the orca-math library (version {version}). "
        "The columns `question` and `answer` follow microsoft/orca-math-word-problems-200k; the other columns "
        "record where each problem came from and how its answer was checked.\n\n"
        f"```python\nfrom datasets import {'load_dataset' if repo_id else 'load_from_disk'}\n\nds = {load}\n```"
    )
    if license_id == DEFAULT_LICENSE:
        text += (
            "\n\n> **License not set.** This card says `license: other`. The data holds text written by the teacher "
            "model and derived from the seed problems: set a license that the seeds' and the model's terms allow "
            "(`orca-math push --license ID`)."
        )
    return text


def _how_made(folder: OutputFolder) -> str:
    config = folder.config
    if not config:
        return "## How it was made\n\nThe run's manifest was not found, so the recipe cannot be shown."
    manifest = folder.manifest or {}
    lines = [
        "## How it was made",
        "",
        f"- Seeds: `{config.get('seeds', 'unknown')}` (fingerprint `{config.get('seeds_fingerprint', 'unknown')}`), "
        f"options {compact_json(config.get('seed_options') or {})}",
        f"- Model: `{config.get('model', 'unknown')}`",
        f"- Library: orca-math {manifest.get('library_version', 'unknown')}; run `{manifest.get('run_key', '?')}` "
        f"created {manifest.get('created_at', '?')}",
    ]
    harden = folder.stage_config("harden")
    if harden:
        lines.append(f"- Hardening: {harden.get('params', {}).get('rounds', '?')} Suggester/Editor round(s), "
                     f"keeping {harden.get('params', {}).get('keep', '?')} rounds")
    stage_rows = [[s.get("stage"), s.get("class"), compact_json(s.get("params", {})), s.get("model") or "(run model)"]
                  for s in config.get("stages", [])]
    lines += ["", "Stages, in order:", "", _table(["stage", "class", "parameters", "model"], stage_rows)]
    agent_rows = [[stage.get("stage"), agent, info.get("class", ""), f"`{info.get('card', '')}`", f"`{info.get('template', '')}`"]
                  for stage in config.get("stages", []) for agent, info in (stage.get("agents") or {}).items()]
    if agent_rows:
        lines += ["", "Agents (hashes of their card and prompt template):", "",
                  _table(["stage", "agent", "class", "card", "template"], agent_rows)]
    else:
        lines += ["", "The manifest records no agent card or template hashes."]
    return "\n".join(lines)


def _contents(dataset) -> str:
    if dataset is None:
        return "## Contents\n\nThe dataset folder was not found."
    if "origin" not in dataset.column_names:
        return "## Contents\n\nThe dataset has no `origin` column, so its rows cannot be counted by origin."
    counts = origin_counts(dataset)
    if not counts:
        return ("## Contents\n\nThe dataset has no rows: every problem was dropped or failed (the funnel below says "
                "where, and `drops.jsonl` and `failures.jsonl` say why).")
    # What each origin means, from the card of the agent that writes it.
    from orca_math.agents import origin_info

    def meaning(origin: Any) -> str:
        info = origin_info(origin) if isinstance(origin, str) else None
        return info.description if info is not None else "-"

    rows = [[origin, rnd, n, meaning(origin)]
            for (origin, rnd), n in sorted(counts.items(), key=lambda item: (str(item[0][0]), item[0][1]))]
    text = "## Contents\n\nRows per origin and hardening round:\n\n" + _table(["origin", "round", "rows", "meaning"], rows)
    if "verification" in dataset.column_names:
        text += "\n\n" + verification_shares(column_values(dataset, "verification"), column_values(dataset, "verified"))
    if "difficulty" in dataset.column_names and "pass_rate" in dataset.column_names:
        text += "\n\n" + difficulty_shares(column_values(dataset, "difficulty"), column_values(dataset, "pass_rate"))
    return text


#: Difficulty bands, easiest first (`orca_math.pipeline.difficulty`).
_BANDS = ("easy", "medium", "hard", "unsolved")


def difficulty_shares(bands: list[str | None], pass_rates: list[float | None]) -> str:
    """The card's table of difficulty bands against the student: rows, share and mean pass rate per band."""
    total = len(bands)
    if not total:
        return "No rows, so no difficulty was measured."
    rows = []
    for band in (*_BANDS, None):
        rates = [rate for b, rate in zip(bands, pass_rates, strict=True) if b == band]
        if not rates and band is not None:
            rows.append([f"`{band}`", 0, "0.0%", ""])
        elif rates:
            known = [rate for rate in rates if rate is not None]
            mean = f"{sum(known) / len(known):.2f}" if known else ""
            rows.append([f"`{band}`" if band else "not measured", len(rates), f"{len(rates) / total:.1%}", mean])
    return ("Difficulty against the student (pass rate: the share of the student's samples graded correct; "
            "the thresholds of the bands are in the difficulty stage's parameters below):\n\n" + _table(["band", "rows", "share", "mean pass rate"], rows))


def verification_shares(verifications: list[Any], verified: list[bool | None]) -> str:
    """The share of rows verified by each method, as the card's table (a method-less row counts as `none`)."""
    methods = [(v or {}).get("method", "none") if isinstance(v, dict) else str(v or "none") for v in verifications]
    counts = Counter(zip(methods, verified, strict=True))
    total = len(methods)
    rows = [[f"`{method}`", {True: "yes", False: "no (kept unverified)", None: "not checked"}[ok], n, f"{n / total:.1%}"]
            for (method, ok), n in sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))]
    confirmed = sum(n for (_, ok), n in counts.items() if ok)
    return (f"How answers were verified ({confirmed} of {total} rows verified, {confirmed / total:.1%}):\n\n"
            + _table(["method", "verified", "rows", "share"], rows)) if total else "No rows, so nothing was verified."


def _funnel(folder: OutputFolder) -> str:
    funnel = folder.funnel
    if not funnel.get("stages"):
        return "## Funnel\n\nNo funnel was recorded for this run."
    rows = [["seeds", "", funnel.get("seeds", ""), "", "", ""]]
    for s in funnel["stages"]:
        tokens = s.get("prompt_tokens", 0) + s.get("completion_tokens", 0)
        rows.append([s["name"], s.get("inputs", ""), s.get("outputs", ""), s.get("failed", 0), s.get("dropped", 0), tokens])
    return (
        "## Funnel\n\nProblems in and out of each stage. Every input ends as an output, a drop with a reason, "
        "or a failure with a reason.\n\n" + _table(["stage", "in", "out", "failed", "dropped", "tokens"], rows)
        + f"\n\nFinal rows: {funnel.get('final_rows', '?')}; tokens: {funnel.get('prompt_tokens', 0)} prompt + "
        f"{funnel.get('completion_tokens', 0)} completion." + _cost(folder)
    )


def _cost(folder: OutputFolder) -> str:
    """The run's cost, saying when calls went through a batch API at its price."""
    cost = folder.funnel.get("cost_usd")
    if cost is None:  # a stage without a price (a self-hosted student): the priced stages' cost per row still shows
        return _cost_per_row(folder)
    batch = folder.summary.get("batch") or {}
    price = f" at the batch price ({batch['price_multiplier']:g} x the online price)" if batch.get("price_multiplier") else ""
    return f" Cost: ${cost:.4f}{price}." + _cost_per_row(folder)


def _cost_per_row(folder: OutputFolder) -> str:
    """The actual cost per kept row, next to a pilot's estimate (`OUT/estimate.json`) when there is one.

    The rows' cost counts the replies served from the response cache at their price: a pilot paid
    for them, and its estimate projects every call the target needs. Stages without a price are
    left out and named, as the pilot's projection leaves them out.
    """
    rows = int(folder.funnel.get("final_rows") or 0)
    stages = [s for s in folder.funnel.get("stages") or () if s.get("calls")]
    priced = [s for s in stages if s.get("cost_usd") is not None]
    if not rows or not priced:
        return ""
    paid = sum(s["cost_usd"] for s in priced)
    cached = sum(s.get("saved_by_cache_usd") or 0.0 for s in priced)
    notes = []
    if cached:
        notes.append(f"replies served from the response cache counted at their price; this run paid ${paid / rows:.6f} a row")
    unpriced = [s["name"] for s in stages if s.get("cost_usd") is None]
    if unpriced:
        which = f"the {unpriced[0]} stage's" if len(unpriced) == 1 else f"the {', '.join(unpriced)} stages'"
        notes.append(f"not counting {which} calls, which have no price")
    text = f" Cost per kept row: ${(paid + cached) / rows:.6f}" + (f" ({'; '.join(notes)})" if notes else "")
    estimate_path = folder.path / "estimate.json"
    if estimate_path.is_file():
        estimate = json.loads(estimate_path.read_text(encoding="utf-8"))
        mode = "batch" if (folder.summary.get("batch") or {}).get("price_multiplier") else "online"
        per_row = (estimate.get("cost_per_row_usd") or {}).get(mode)
        if per_row:
            text += (f"; the pilot of {estimate.get('pilot_seeds')} seeds estimated ${per_row['expected']:.6f} "
                     f"(90% range ${per_row['low']:.6f} to ${per_row['high']:.6f}, {mode})")
    return text + "."


def _drops(folder: OutputFolder) -> str:
    rows = [[s["name"], kind, reason, n] for s in folder.funnel.get("stages", [])
            for kind, key in (("dropped", "drops_by_reason"), ("failed", "failures_by_reason"))
            for reason, n in sorted((s.get(key) or {}).items())]
    if not rows:
        return "## Drops and failures\n\nNo problem was dropped and no call failed."
    return "## Drops and failures\n\n" + _table(["stage", "kind", "reason", "rows"], rows)


def _decontamination(folder: OutputFolder) -> str:
    report = folder.summary.get("decontamination")
    if not report:
        return "## Decontamination\n\nThis run did not check the data against benchmark test sets."
    refs = report.get("references") or {}
    per = report.get("per_benchmark") or {}
    rows = [[name, refs.get(name, ""), per.get(name, 0)] for name in dict.fromkeys([*refs, *per])]
    text = (
        f"## Decontamination\n\nMethod: {report.get('method', 'unknown')} (n={report.get('n', '?')}, "
        f"minimum overlap {report.get('min_overlap', '?')}), action `{report.get('action', '?')}`. "
        f"{report.get('contaminated', '?')} of {report.get('checked', '?')} rows overlapped a benchmark."
    )
    if rows:
        text += "\n\n" + _table(["benchmark", "reference questions", "overlapping rows"], rows)
    return text


def _columns(dataset, added: dict[str, dict[str, str]]) -> str:
    names = dataset.column_names if dataset is not None else [*COLUMN_DESCRIPTIONS, *added]

    def description(name: str) -> str:
        if name in added:  # declared by a stage (Stage.columns)
            return f"added by stage `{added[name].get('stage', '?')}` ({added[name].get('type', '?')})"
        return COLUMN_DESCRIPTIONS.get(name, "")

    rows = [[f"`{name}`", description(name)] for name in names]
    return "## Columns\n\n" + _table(["column", "description"], rows)


def _limitations() -> str:
    return (
        "## Limitations\n\nEvery solution was written by the teacher model named above and may be wrong. "
        "`verified` is true where the answer was confirmed: it matched the known answer (`known_target`), enough "
        "independent solutions agreed (`majority`), or an executed program computed it too (`program`); the "
        "`verification` column holds the evidence. Rows with method `none` were not checked, and rows with "
        "`verified` false were kept unconfirmed on request. A verified answer can still be wrong when every check "
        "shares the same mistake. Problems inherit the style and topics of the seed set."
    )
