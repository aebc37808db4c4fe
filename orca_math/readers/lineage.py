"""One problem's family tree, from a generation run's checkpoints.

The tree is what the agents did to the problem: its seed, the Ask-Me-Anything statement and the
sibling problems written from the same seed, each hardening round's suggestions and the edited
problem (as a word diff against the text it was edited from), the solutions with their programs and
votes, and how it ended (kept, or the drop or failure reason with the raw reply). Every node names
its parent and children by id, so a viewer can walk the tree.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

from orca_math.readers.generation import GenerationReader

#: The most children or siblings listed (a seed has a handful; a hub of thousands is cut, and says so).
MAX_RELATIVES = 200
_INTERNAL = ("_stage", "_kind")


def word_diff(old: str, new: str) -> list[list[str]]:
    """`[[op, text], ...]` turning `old` into `new` word by word; op is "equal", "insert" or "delete"."""
    a, b = re.findall(r"\S+|\s+", old or ""), re.findall(r"\S+|\s+", new or "")
    parts: list[list[str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op in ("equal", "delete", "replace") and i2 > i1:
            parts.append(["equal" if op == "equal" else "delete", "".join(a[i1:i2])])
        if op in ("insert", "replace") and j2 > j1:
            parts.append(["insert", "".join(b[j1:j2])])
    return parts


def _edits_parent(origin: Any) -> bool:
    """Whether rows of `origin` rewrite their parent problem, as its agent's card says (Suggester/Editor hardening)."""
    from orca_math.agents import origin_info  # the cards: read when a tree is drawn, not when a viewer starts

    info = origin_info(origin) if isinstance(origin, str) else None
    return info is not None and info.edits_parent


def _evidence(value: Any) -> Any:
    """A row's verification as data: a dataset column may hold it as JSON text."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _status(reader: GenerationReader, entry: dict[str, Any]) -> str:
    if entry["_kind"] != "ok":
        return entry["_kind"]
    return "kept" if reader.stages and entry["_stage"] == reader.stages[-1] else "in progress"


def _brief(reader: GenerationReader, problem_id: str) -> dict[str, Any]:
    entries = reader.entries_of(problem_id)
    if not entries:
        return {"id": problem_id, "missing": True}
    last = entries[-1]
    text = next((e.get("question") for e in reversed(entries) if e.get("question")), "")
    metadata = next((e.get("metadata") for e in entries if isinstance(e.get("metadata"), dict)), None) or {}
    return {"id": problem_id, "question": text, "origin": last.get("origin"), "round": last.get("round"),
            "status": _status(reader, last), "stage": last["_stage"], "reason": last.get("reason"),
            "parent_id": next((e.get("parent_id") for e in entries if e.get("parent_id")), None),
            "statement": metadata.get("statement"), "suggestions": metadata.get("suggestions")}


def _relatives(reader: GenerationReader, ids: list[str]) -> dict[str, Any]:
    return {"total": len(ids), "items": [_brief(reader, i) for i in ids[:MAX_RELATIVES]]}


def lineage(reader: GenerationReader, problem_id: str) -> dict[str, Any] | None:
    """The family tree of one problem, or None when the run holds no such id.

    Returns:
        `{"node", "ancestors" (root first), "children", "siblings", "statement", "suggestions",
        "diff", "stages", "solutions", "verification", "outcome"}`; `stages` has one entry per stage
        the problem passed, with the row as that stage wrote it (or its drop or failure).
    """
    entries = reader.entries_of(problem_id)
    if not entries:
        return None
    node = _brief(reader, problem_id)
    ancestors: list[dict[str, Any]] = []
    parent = node.get("parent_id")
    seen = {problem_id}
    while parent and parent not in seen and len(ancestors) < 50:
        seen.add(parent)
        brief = _brief(reader, parent)
        ancestors.append(brief)
        parent = brief.get("parent_id")
    ok = [e for e in entries if e["_kind"] == "ok"]
    solved = next((e for e in reversed(entries) if e.get("solutions") or e.get("answer")), None)
    metadata = next((e.get("metadata") for e in entries if isinstance(e.get("metadata"), dict)), None) or {}
    last = entries[-1]
    diff = None
    if ancestors and not ancestors[0].get("missing") and _edits_parent(node.get("origin")):
        diff = word_diff(ancestors[0].get("question") or "", node.get("question") or "")
    # Each earlier hardening round on the way, with its own suggestions and edit, so the page reads round by round.
    for child, parent_brief in zip(ancestors, ancestors[1:], strict=False):
        if _edits_parent(child.get("origin")) and not parent_brief.get("missing"):
            child["diff"] = word_diff(parent_brief.get("question") or "", child.get("question") or "")
    outcome = {"status": node["status"], "stage": last["_stage"], "reason": last.get("reason"), "detail": last.get("detail"),
               "raw_reply": last.get("raw_reply"), "error_type": last.get("error_type"), "duplicate_of": last.get("duplicate_of")}
    siblings = [i for i in reader.children_of(node["parent_id"]) if i != problem_id] if node.get("parent_id") else []
    return {
        "node": node,
        "ancestors": list(reversed(ancestors)),
        "children": _relatives(reader, reader.children_of(problem_id)),
        "siblings": _relatives(reader, siblings),
        "statement": metadata.get("statement"),
        "suggestions": metadata.get("suggestions"),
        "diff": diff,
        "answer": (solved or {}).get("answer"),
        "final_answer": (solved or {}).get("final_answer"),
        "known_answer": next((e.get("known_answer") for e in entries if e.get("known_answer") is not None), None),
        "solutions": (solved or {}).get("solutions") or [],
        "verification": _evidence(next((e.get("verification") for e in reversed(ok) if e.get("verification") is not None), None)),
        "verified": next((e.get("verified") for e in reversed(ok) if "verified" in e), None),
        "verification_detail": next((e.get("verification_detail") for e in reversed(ok) if e.get("verification_detail")), None),
        "outcome": outcome,
        "failures": [{"stage": e["_stage"], "reason": e.get("reason"), "error_type": e.get("error_type"), "attempts": e.get("attempts"),
                      "raw_reply": e.get("raw_reply")} for e in entries if e["_kind"] == "failed"],
        "stages": [{"stage": e["_stage"], "kind": e["_kind"], "row": {k: v for k, v in e.items() if k not in _INTERNAL}}
                   for e in entries],
    }
