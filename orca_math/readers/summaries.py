"""Plain readings of a folder's JSON files that the report and the viewer both show.

Each function takes what the folder holds, in any of the shapes its writers have used, and returns
one shape; nothing here draws or serves anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orca_math.models.errors import SECRET_NAME

#: Settings whose names look like credentials are shown as this, in case a user's own code put one there.
REDACTED = "[redacted]"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def benchmark_results(summary: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-benchmark results in one shape, from either summary layout the evaluator may write.

    Accepts `pass_at_1` or `pass@1`; a `methods` dict or top-level `exact`/`llm` counts; an
    `agreement` value or `agreement_rate` (with `audited`/`audit_agreements`). The pooled
    `overall` entry, when present, comes last.
    """
    raw = dict(summary.get("benchmarks") or {})
    if isinstance(summary.get("overall"), Mapping) and len(raw) > 1:
        raw["overall"] = summary["overall"]
    results = {}
    for name, r in raw.items():
        if not isinstance(r, Mapping):
            continue
        methods = dict(r.get("methods") or {k: r[k] for k in ("exact", "llm") if k in r})
        agreement = r.get("agreement", r.get("agreement_rate"))
        if r.get("audited"):
            agreement = f"{r.get('audit_agreements', 0)}/{r['audited']} ({_pct(r.get('agreement_rate'))})"
        results[name] = {"n": r.get("n"), "correct": r.get("correct"), "failures": r.get("failures", 0),
                         "pass_at_1": r.get("pass_at_1", r.get("pass@1")), "methods": methods, "agreement": agreement}
    return results


def learner_settings(path: Path) -> dict[str, Any] | None:
    """`learner.json` of an `orca-math learn` folder (its settings), or None for other folders."""
    try:
        data = json.loads((Path(path) / "learner.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def redact(value: Any) -> Any:
    """A copy of a settings tree with every credential-like key's value replaced by `REDACTED`.

    Run folders hold no secrets by design; this keeps it so on a page even when a user's own
    stage put one into its parameters.
    """
    if isinstance(value, Mapping):
        return {k: (REDACTED if SECRET_NAME.search(str(k)) and v not in (None, "") else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def run_recipe(path: str | Path, run_key: str | None = None) -> dict[str, Any] | None:
    """The resolved recipe a command wrote into its output folder (`recipe.yaml`), credentials redacted.

    Args:
        path: the output folder.
        run_key: when given, the recipe only if it records that run (a folder's recipe.yaml is its
            latest command's; an older run in the same folder ran with another).

    Returns:
        The recipe as a tree, or None when the folder has none (a run started from Python).
    """
    import yaml

    from orca_math.recipes.record import RECIPE_FILE

    try:
        data = yaml.safe_load((Path(path) / RECIPE_FILE).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(data, dict):
        return None
    recorded = data.get("recorded")
    if run_key is not None and isinstance(recorded, Mapping) and recorded.get("run_key") not in (None, run_key):
        return None
    return redact(data)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A settings tree as `a.b.c -> value` leaves (lists of plain values stay whole), for side-by-side diffs."""
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list) and any(isinstance(v, Mapping) for v in value):
        flat = {}
        for index, item in enumerate(value):
            name = item.get("stage") or item.get("name") if isinstance(item, Mapping) else None
            flat.update(flatten(item, f"{prefix}[{name or index}]"))
        return flat
    return {prefix: value}


def verification_method(row: Mapping[str, Any]) -> str:
    """A row's verification method, whether `verification` is a name, a dict or JSON text of one."""
    value = row.get("verification")
    if value is None:
        return ""
    if type(value) is str and not value.startswith("{"):
        return value  # the common case first: this runs for every row a viewer indexes
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, Mapping):
        return str(value.get("method") or "")
    return "" if value is None else str(value)
