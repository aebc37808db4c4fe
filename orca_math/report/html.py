"""The report page: sections of tables and PNG charts, rendered as one self-contained HTML file.

The folder is read through `orca_math.readers`, the reader the viewer (`orca-math view`) uses too.

Every section works from what the folder holds; when its data is missing it says so in one line
instead of failing, so a half-finished run or an evaluation folder still gets a useful page.
"""

from __future__ import annotations

import html
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from orca_math.readers import GenerationReader, OutputFolder, benchmark_results, learner_settings
from orca_math.records import SEED_ORIGIN
from orca_math.report import charts

_OUTCOME_COLORS = {"verified": "#2f855a", "disagreed": "#c53030", "not checked": "#a0aec0"}
ANSWER_TYPES = ("integer", "decimal", "fraction", "negative", "non-numeric")

#: Runs a small script after load so a headless browser can tell whether every image decoded.
_IMAGE_CHECK = """<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  document.body.dataset.imagesTotal = images.length;
  document.body.dataset.imagesLoaded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
});
</script>"""

_STYLE = """<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #1a202c; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #cbd5e0; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .9em; }
th, td { border: 1px solid #cbd5e0; padding: .25em .6em; text-align: right; }
th { background: #edf2f7; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; display: block; margin: .6em 0; }
.missing { color: #718096; font-style: italic; } .meta { color: #4a5568; }
</style>"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table of escaped cells; None shows as n/a."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _missing(text: str) -> str:
    return f'<p class="missing">{_e(text)}</p>'


def _image(path: Path, alt: str) -> str:
    return f'<img src="{_e(path.name)}" alt="{_e(alt)}">'


def answer_type(final_answer: Any) -> str:
    """Classify a final answer as integer, decimal, fraction, negative or non-numeric."""
    from orca_math.answers import parse_number

    text = "" if final_answer is None else str(final_answer).strip()
    value = parse_number(text) if text else None
    if value is None:
        return "non-numeric"
    if value < 0:
        return "negative"
    if "/" in text or "frac" in text:
        return "fraction"
    return "integer" if value.denominator == 1 else "decimal"


def difficulty_groups(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Solution length, steps and agreement per group: seeds, each hardening round, then each other origin.

    Rows of an origin whose card says its problems edit their parent (Suggester/Editor hardening)
    are grouped by round; rows of any other agent's origin (Ask-Me-Anything) by origin.
    """
    from orca_math.agents import origin_info

    grouped: dict[tuple[int, str], list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        origin = row.get("origin") or SEED_ORIGIN
        info = origin_info(origin)
        if origin == SEED_ORIGIN:
            grouped[(0, "seed (round 0)")].append(row)
        elif info is not None and info.edits_parent:
            grouped[(1 + int(row.get("round") or 0), f"round {row.get('round')}")].append(row)
        else:
            grouped[(100, str(origin).replace("_", "-"))].append(row)
    groups = []
    for (_, label), members in sorted(grouped.items()):
        chars = [len(r.get("answer") or "") for r in members]
        steps = [sum(1 for line in (r.get("answer") or "").splitlines() if line.strip()) for r in members]
        checked = [r["verified"] for r in members if r.get("verified") is not None]
        groups.append({
            "label": label,
            "n": len(members),
            "mean_chars": statistics.fmean(chars),
            "median_chars": statistics.median(chars),
            "mean_steps": statistics.fmean(steps),
            "checked": len(checked),
            "agreement": sum(checked) / len(checked) if checked else None,
        })
    return groups


def _section(title: str, body: str) -> str:
    return f"<section><h2>{_e(title)}</h2>\n{body}\n</section>"


def _funnel(folder: OutputFolder, out: Path) -> str:
    funnel = folder.funnel
    stages = funnel.get("stages") or []
    if not stages:
        return _missing("No funnel was recorded for this run.")
    chart = charts.funnel_chart(int(funnel.get("seeds", 0)), stages, out / "funnel.png")
    rows = [[s["name"], s.get("inputs"), s.get("outputs"), s.get("dropped", 0), s.get("failed", 0)] for s in stages]
    reasons = [[s["name"], kind, reason, n] for s in stages for kind, key in (("dropped", "drops_by_reason"), ("failed", "failures_by_reason"))
               for reason, n in sorted((s.get(key) or {}).items())]
    text = _image(chart, "stage funnel") + table(["stage", "in", "out", "dropped", "failed"], rows)
    text += f"<p>Seeds: {_e(funnel.get('seeds', '?'))}; final rows: {_e(funnel.get('final_rows', '?'))}; time: {_e(funnel.get('seconds', '?'))} s.</p>"
    return text + (table(["stage", "kind", "reason", "rows"], reasons) if reasons else "<p>No drops and no failures.</p>")


def _difficulty(folder: OutputFolder, out: Path, solved: list[dict[str, Any]]) -> str:
    if not solved:
        if folder.stage_config("solve") or folder.stage_config("verify"):
            return _missing("No problem was solved: none reached the solve stage or every one failed there (see the funnel).")
        return _missing("No solved problems found (the run has no solve or verify stage).")
    groups = difficulty_groups(solved)
    chart = charts.difficulty_chart(groups, out / "difficulty.png")
    rows = [[g["label"], g["n"], round(g["mean_chars"]), g["median_chars"], round(g["mean_steps"], 1), g["checked"], _pct(g["agreement"])] for g in groups]
    note = "<p>Agreement is the share of problems whose teacher answer was verified (against a known answer or a majority); n/a where none could be checked.</p>"
    header = ["group", "problems", "mean chars", "median chars", "mean steps", "checked", "agreement"]
    return _image(chart, "difficulty by hardening round") + table(header, rows) + note


def _answer_types(folder: OutputFolder, out: Path, solved: list[dict[str, Any]], dataset) -> str:
    counts: dict[str, Counter] = {}
    if solved:
        counts["solved"] = Counter(answer_type(r.get("final_answer")) for r in solved)
    if dataset is not None and "final_answer" in dataset.column_names:
        counts["final dataset"] = Counter(answer_type(a) for a in dataset["final_answer"])
    if not counts:
        return _missing("No final answers found.")
    chart = charts.answer_types_chart(counts, ANSWER_TYPES, out / "answer_types.png")
    rows = [[t, *[c.get(t, 0) for c in counts.values()]] for t in ANSWER_TYPES]
    return _image(chart, "final answer types") + table(["type", *counts], rows)


def _tokens(folder: OutputFolder, out: Path) -> str:
    stages = folder.funnel.get("stages") or []
    if not any(s.get("prompt_tokens") or s.get("completion_tokens") for s in stages):
        return _missing("No token usage was recorded.")
    chart = charts.tokens_chart(stages, out / "tokens.png")
    has_cost = any(s.get("cost_usd") is not None for s in stages)
    header = ["stage", "prompt tokens", "completion tokens", "calls", "cached calls"] + (["cost (USD)"] if has_cost else [])
    rows = [[s["name"], s.get("prompt_tokens", 0), s.get("completion_tokens", 0), s.get("calls", 0), s.get("cached_calls", 0)]
            + ([s.get("cost_usd")] if has_cost else []) for s in stages]
    note = "" if has_cost else "<p>No cost was recorded (set prices for the model to see cost per stage).</p>"
    if has_cost and not any(s.get("cost_usd") for s in stages):
        note = "<p>The model is priced at 0 (a local model), so the run cost nothing.</p>"
    return _image(chart, "tokens per stage") + table(header, rows) + note


def _verification(folder: OutputFolder, out: Path, solved: list[dict[str, Any]]) -> str:
    checked = [r for r in solved if "verification" in r]
    if not checked:
        if folder.stage_config("verify"):
            return _missing("The verify stage checked no problem: none reached it (see the funnel).")
        return _missing("No verification results found (the run has no verify stage).")
    methods: dict[str, Counter] = defaultdict(Counter)
    for row in checked:
        method = row["verification"].get("method", "none") if isinstance(row["verification"], dict) else row["verification"]
        methods[method][{True: "verified", False: "disagreed", None: "not checked"}[row.get("verified")]] += 1
    chart = charts.stacked_counts_chart(methods, "Verification method and outcome", out / "verification.png", colors=_OUTCOME_COLORS)
    rows = [[m, sum(c.values()), c["verified"], c["disagreed"], c["not checked"],
             _pct(c["verified"] / (c["verified"] + c["disagreed"]) if c["verified"] + c["disagreed"] else None)] for m, c in methods.items()]
    return _image(chart, "verification methods") + table(["method", "problems", "verified", "disagreed", "not checked", "agreement"], rows)


def _decontamination(folder: OutputFolder) -> str:
    report = folder.summary.get("decontamination")
    if not report:
        return _missing("This run did not check the data against benchmark test sets.")
    refs, per = report.get("references") or {}, report.get("per_benchmark") or {}
    rows = [[name, refs.get(name), per.get(name, 0)] for name in dict.fromkeys([*refs, *per])]
    text = (f"<p>{_e(report.get('method', 'unknown method'))}, action {_e(report.get('action', '?'))}: "
            f"{_e(report.get('contaminated', '?'))} of {_e(report.get('checked', '?'))} rows overlapped a benchmark.</p>")
    return text + table(["benchmark", "reference questions", "overlapping rows"], rows)


def _generation_sections(folder: OutputFolder, out: Path) -> list[str]:
    solved = GenerationReader(folder.path, run_dir=folder.run_dir).solved_rows()  # the rows as the viewer reads them
    dataset = folder.dataset()
    return [
        _section("Stage funnel", _funnel(folder, out)),
        _section("Difficulty before and after hardening", _difficulty(folder, out, solved)),
        _section("Answer types", _answer_types(folder, out, solved, dataset)),
        _section("Tokens and cost per stage", _tokens(folder, out)),
        _section("Grader methods and agreement", _verification(folder, out, solved)),
        _section("Decontamination", _decontamination(folder)),
    ]


def _benchmarks(folder: OutputFolder, out: Path) -> str:
    results = benchmark_results(folder.summary)
    if not results:
        return _missing("No per-benchmark results in summary.json.")
    chart = charts.accuracy_chart({n: float(r["pass_at_1"] or 0) for n, r in results.items()}, out / "accuracy.png")
    rows = [[n, r["n"], r["correct"], _pct(r["pass_at_1"]), r["failures"]] for n, r in results.items()]
    return _image(chart, "accuracy per benchmark") + table(["benchmark", "problems", "correct", "pass@1", "failures"], rows)


def _grader(folder: OutputFolder, out: Path) -> str:
    results = benchmark_results(folder.summary)
    methods = {n: r["methods"] for n, r in results.items() if r["methods"] and n != "overall"}
    if not methods:
        return _missing("No grader method counts in summary.json.")
    chart = charts.stacked_counts_chart(methods, "Grading method per benchmark", out / "grader_methods.png")
    keys = list(dict.fromkeys(k for m in methods.values() for k in m))
    rows = [[n, *[m.get(k, 0) for k in keys], _agreement(results[n]["agreement"])] for n, m in methods.items()]
    return _image(chart, "grader methods") + table(["benchmark", *keys, "agreement"], rows)


def _agreement(value: Any) -> Any:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    return _pct(value) if isinstance(value, float) else value


def _iterations(folder: OutputFolder, out: Path) -> str:
    iterations = folder.summary.get("iterations") or []
    if not iterations:
        return _missing("This evaluation has no learning-loop iterations.")
    chart = charts.iterations_chart(iterations, out / "iterations.png")
    names = list(dict.fromkeys(n for it in iterations for n in (it.get("benchmarks") or {})))
    rows = [[it.get("iteration"), it.get("model", ""), *[_pct((it.get("benchmarks") or {}).get(n)) for n in names]] for it in iterations]
    return _image(chart, "accuracy per iteration") + table(["iteration", "model", *names], rows)


def _evaluation_sections(folder: OutputFolder, out: Path) -> list[str]:
    return [
        _section("Accuracy per benchmark", _benchmarks(folder, out)),
        _section("Grader methods and agreement", _grader(folder, out)),
        _section("Accuracy per iteration", _iterations(folder, out)),
    ]


def _meta(folder: OutputFolder) -> str:
    """The line under the title, from what the folder records: no "?" for what it does not."""
    learner = learner_settings(folder.path)
    key = folder.summary.get("run_key")
    if learner is not None:
        parts = [f"learning loop in <code>{_e(folder.path)}</code>, {len(folder.summary.get('iterations') or [])} iteration(s)"]
    elif key:
        parts = [f"{_e(folder.kind)} run <code>{_e(key)}</code> in <code>{_e(folder.path)}</code>"]
    else:
        parts = [f"{_e(folder.kind)} folder <code>{_e(folder.path)}</code>"]
    model = folder.config.get("model") or folder.summary.get("model")
    if model:
        parts.append(f"model <code>{_e(model)}</code>")
    elif learner and learner.get("base_model"):
        parts.append(f"base model <code>{_e(learner['base_model'])}</code>")
    version = (folder.manifest or {}).get("library_version")
    if version:
        parts.append(f"orca-math {_e(version)}")
    return "; ".join(parts)


def render_report(folder: OutputFolder, out: Path) -> str:
    """Draw the charts into `out` and return the page's HTML."""
    build: Callable[[OutputFolder, Path], list[str]] = _generation_sections if folder.kind == "generation" else _evaluation_sections
    sections = build(folder, out)
    meta = _meta(folder)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>orca-math report</title>{_STYLE}</head>\n'
        f'<body><h1>orca-math report</h1><p class="meta">{meta}</p>\n' + "\n".join(sections) + f"\n{_IMAGE_CHECK}</body></html>\n"
    )
