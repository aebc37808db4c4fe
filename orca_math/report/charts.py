"""PNG charts for the report, drawn with matplotlib's Agg backend (no display needed).

Each function takes plain numbers and a path, writes one PNG and returns the path. They never
decide what data to show; `orca_math.report.html` does that and skips a chart when data is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: reports are written on servers without a display

import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"in": "#9aa5b1", "out": "#2b6cb0", "dropped": "#dd6b20", "failed": "#c53030", "prompt": "#4c8bd6", "completion": "#8fbf5a"}
DPI = 100


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _label_bars(ax, bars, fmt: str = "{:g}") -> None:
    for bar in bars:
        height = bar.get_height()
        if height:
            ax.annotate(fmt.format(height), (bar.get_x() + bar.get_width() / 2, height), ha="center", va="bottom", fontsize=8)


def funnel_chart(seeds: int, stages: Sequence[Mapping], path: Path) -> Path:
    """Grouped bars per stage: rows in, out, dropped and failed, after a first bar for the seeds."""
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * (len(stages) + 1)), 3.6))
    names = ["seeds", *[s["name"] for s in stages]]
    width = 0.2
    positions = range(len(names))
    series = {
        "in": [0] + [s.get("inputs", 0) for s in stages],
        "out": [seeds] + [s.get("outputs", 0) for s in stages],
        "dropped": [0] + [s.get("dropped", 0) for s in stages],
        "failed": [0] + [s.get("failed", 0) for s in stages],
    }
    for offset, (label, values) in enumerate(series.items()):
        bars = ax.bar([p + (offset - 1.5) * width for p in positions], values, width, label=label, color=COLORS[label])
        _label_bars(ax, bars)
    ax.set_xticks(list(positions), names)
    ax.set_ylabel("problems")
    ax.set_ylim(0, max(max(v) for v in series.values()) * 1.25 or 1)  # headroom for the legend and labels
    ax.set_title("Problems through each stage")
    ax.legend(fontsize=8, ncols=4, loc="upper left")
    return _save(fig, path)


def difficulty_chart(groups: Sequence[Mapping], path: Path) -> Path:
    """Three panels per group (seed, round 1, ...): mean solution length, mean steps, agreement rate.

    Each group is `{"label", "mean_chars", "mean_steps", "agreement"}`; `agreement` may be None.
    """
    labels = [g["label"] for g in groups]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    panels = [
        ("mean_chars", "solution length (characters)", "#2b6cb0", "{:.0f}"),
        ("mean_steps", "steps (non-empty lines)", "#6b46c1", "{:.1f}"),
        ("agreement", "teacher agreement (share verified)", "#2f855a", "{:.0%}"),
    ]
    for ax, (key, title, color, fmt) in zip(axes, panels, strict=True):
        values = [g.get(key) for g in groups]
        bars = ax.bar(labels, [v or 0 for v in values], color=color)
        for bar, value in zip(bars, values, strict=True):
            text = "n/a" if value is None else fmt.format(value)
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
        if key == "agreement":
            ax.set_ylim(0, 1.1)
    fig.suptitle("Difficulty by hardening round", fontsize=11)
    return _save(fig, path)


def answer_types_chart(counts: Mapping[str, Mapping[str, int]], types: Sequence[str], path: Path) -> Path:
    """Grouped bars: share of each final-answer type, one series per row set (e.g. solved, final)."""
    fig, ax = plt.subplots(figsize=(8, 3.4))
    width = 0.8 / max(len(counts), 1)
    for index, (label, by_type) in enumerate(counts.items()):
        total = sum(by_type.values())
        shares = [by_type.get(t, 0) / total if total else 0.0 for t in types]
        bars = ax.bar([p + (index - (len(counts) - 1) / 2) * width for p in range(len(types))], shares, width, label=f"{label} (n={total})")
        _label_bars(ax, bars, "{:.0%}")
    ax.set_xticks(range(len(types)), types)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("share of problems")
    ax.set_title("Final answer types")
    ax.legend(fontsize=8)
    return _save(fig, path)


def tokens_chart(stages: Sequence[Mapping], path: Path) -> Path:
    """Stacked prompt/completion tokens per stage, with cost in USD on a second axis when known."""
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(stages)), 3.4))
    names = [s["name"] for s in stages]
    prompt = [s.get("prompt_tokens", 0) for s in stages]
    completion = [s.get("completion_tokens", 0) for s in stages]
    ax.bar(names, prompt, label="prompt", color=COLORS["prompt"])
    ax.bar(names, completion, bottom=prompt, label="completion", color=COLORS["completion"])
    ax.set_ylabel("tokens")
    ax.set_title("Tokens per stage")
    costs = [s.get("cost_usd") for s in stages]
    if any(c for c in costs):  # a free model (every cost 0) gets no cost axis, not one from -0.04 to 0.04
        twin = ax.twinx()
        twin.plot(names, [c or 0 for c in costs], "o-", color="#c53030", label="cost (USD)")
        twin.set_ylim(bottom=0)
        twin.set_ylabel("USD")
        twin.legend(loc="upper right", fontsize=8)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def stacked_counts_chart(
    counts: Mapping[str, Mapping[str, int]], title: str, path: Path, colors: Mapping[str, str] | None = None
) -> Path:
    """Stacked bars, one per group (benchmark, or verification method), one colour per key."""
    groups = list(counts)
    keys = list(dict.fromkeys(k for by_key in counts.values() for k in by_key))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(groups)), 3.4))
    bottom = [0] * len(groups)
    for key in keys:
        values = [counts[g].get(key, 0) for g in groups]
        ax.bar(groups, values, bottom=bottom, label=str(key), color=(colors or {}).get(key))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("problems")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def accuracy_chart(accuracy: Mapping[str, float], path: Path) -> Path:
    """Bars of pass@1 per benchmark."""
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(accuracy)), 3.4))
    bars = ax.bar(list(accuracy), list(accuracy.values()), color="#2b6cb0")
    _label_bars(ax, bars, "{:.1%}")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("pass@1")
    ax.set_title("Accuracy per benchmark")
    return _save(fig, path)


def iterations_chart(iterations: Sequence[Mapping], path: Path) -> Path:
    """Lines of pass@1 per benchmark across learning-loop iterations."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    names = list(dict.fromkeys(name for it in iterations for name in (it.get("benchmarks") or {})))
    xs = [it.get("iteration", index + 1) for index, it in enumerate(iterations)]
    for name in names:
        ys = [(it.get("benchmarks") or {}).get(name) for it in iterations]
        points = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=name)
    ax.set_xticks(xs)
    ax.set_xlabel("iteration")
    ax.set_ylabel("pass@1")
    ax.set_ylim(0, 1.05)
    ax.set_title("Accuracy per iteration")
    ax.legend(fontsize=8)
    return _save(fig, path)
