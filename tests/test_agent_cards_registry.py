"""A new agent is a card, a template and a class: its class, its dry-run hint and its origin are read from its card.

The worked example (a plug-in agent from another package) is tests/test_extending_checker.py.
"""

from __future__ import annotations

import json

import pytest
import yaml

from orca_math.agents import (
    AGENT_CLASSES,
    Agent,
    CardError,
    Editor,
    agent_classes,
    origin_info,
    origins,
    shipped_cards,
    typical_completion_tokens,
)
from orca_math.agents.cards import parse_card
from orca_math.resources import resource_dir

CARD = {"name": "checker", "role": "You check problems.", "template": "checker.jinja", "inputs": ["question"],
        "output_format": "text"}


def test_every_card_in_the_folder_has_its_class_and_its_estimate_hint():
    folder = {path.stem for path in resource_dir("agents").glob("*.yaml")}
    assert set(AGENT_CLASSES) == set(agent_classes()) == folder
    import orca_math.agents

    for agent_class in AGENT_CLASSES.values():  # exported by the name its card gives, with nothing else to edit
        assert getattr(orca_math.agents, agent_class.__name__) is agent_class and agent_class.__name__ in orca_math.agents.__all__
    for card in shipped_cards():
        agent_class = AGENT_CLASSES[card.name]
        assert issubclass(agent_class, Agent) and agent_class.__name__ == card.class_name
        assert card.typical_completion_tokens and card.typical_completion_tokens >= 1, card.name
    assert set(typical_completion_tokens()) == folder


def test_a_cards_estimate_hint_is_read_and_left_out_of_its_fingerprint():
    plain = parse_card(dict(CARD), source="checker.yaml")
    hinted = parse_card({**CARD, "estimate": {"completion_tokens": 12}}, source="checker.yaml")
    assert plain.typical_completion_tokens is None and hinted.typical_completion_tokens == 12
    assert hinted.fingerprint == plain.fingerprint  # a hint for dry runs never changes a run key
    assert typical_completion_tokens([plain, hinted]) == {"checker": 12}


@pytest.mark.parametrize(("estimate", "field"), [({"completion_tokens": 0}, "estimate.completion_tokens"),
                                                 ({"completion_tokens": "many"}, "estimate.completion_tokens"),
                                                 ({"tokens": 5}, "estimate")])
def test_a_bad_estimate_hint_is_refused_naming_the_field(estimate, field):
    with pytest.raises(CardError, match=f"agent card checker.yaml: field '{field}'"):
        parse_card({**CARD, "estimate": estimate}, source="checker.yaml")


def test_the_dry_run_prices_each_reply_at_the_cards_hint(tmp_path):
    from orca_math.pipeline import Pipeline, Solve
    from orca_math.testing import ScriptedChatClient

    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(f'{{"question": "What is {n} plus 2?", "answer": "{n + 2}"}}\n' for n in range(3)),
                     encoding="utf-8")
    pipeline = Pipeline([Solve()], model=ScriptedChatClient(), progress=False, cache=False)
    teacher = typical_completion_tokens()["teacher"]
    estimate = pipeline.estimate(seeds)
    assert estimate.calls == 3 and estimate.completion_tokens == 3 * teacher
    assert pipeline.estimate(seeds, completion_tokens={"teacher": 7}).completion_tokens == 3 * 7


def test_origins_are_the_seeds_and_those_the_cards_declare():
    declared = {card.origin.name: card.origin for card in shipped_cards() if card.origin is not None}
    assert list(origins()) == ["seed", *declared]
    assert declared["ask_me_anything"].known_answer and not declared["ask_me_anything"].edits_parent
    assert declared["suggester_editor"].edits_parent and not declared["suggester_editor"].known_answer
    assert origin_info(None).name == "seed" and origin_info("made_up") is None
    assert all(origins()[name].description for name in origins())


@pytest.mark.parametrize(("origin", "field", "says"), [
    ({"name": "seed", "description": "x"}, "origin.name", "origin of seed problems"),
    ({"name": "Bad Name", "description": "x"}, "origin.name", "does not match"),
    ({"name": "checked"}, "origin", "'description' is a required property"),
    ({"name": "checked", "description": "x", "kept": True}, "origin", "kept"),
    ("checked", "origin", "is not of type 'object'"),
])
def test_a_bad_origin_is_refused_naming_the_field(origin, field, says):
    with pytest.raises(CardError, match=f"agent card checker.yaml: field '{field}'.*{says}"):
        parse_card({**CARD, "origin": origin}, source="checker.yaml")


def test_a_bad_class_field_is_refused_naming_it():
    with pytest.raises(CardError, match="agent card checker.yaml: field 'class'"):
        parse_card({**CARD, "class": "not a class!"}, source="checker.yaml")


def _editor_card(tmp_path, **changes):
    data = yaml.safe_load((resource_dir("agents") / "editor.yaml").read_text(encoding="utf-8"))
    data.update(changes)
    data = {key: value for key, value in data.items() if value is not None}
    path = tmp_path / "my_editor.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(("origin", "expected"), [
    ({"name": "rewritten", "description": "rewritten by my editor", "edits_parent": True}, "rewritten"),
    (None, "suggester_editor"),  # a replacement card without an origin keeps its class's (the role's)
])
def test_hardened_rows_carry_the_origin_of_the_editors_card(tmp_path, origin, expected):
    from orca_math.pipeline import Harden, Pipeline
    from orca_math.testing import ScriptedChatClient
    from orca_math.testing.responders import pipeline_responder

    client = ScriptedChatClient(responder=pipeline_responder)
    editor = Editor(client, card=_editor_card(tmp_path, origin=origin, template="editor.jinja"))
    assert editor.origin == expected
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps({"id": "s1", "question": "Ann has 2 cats and gets 3 more. How many cats?"}) + "\n",
                     encoding="utf-8")
    pipeline = Pipeline([Harden(rounds=1, editor=editor)], model=client, managed=False, progress=False)
    pipeline.run_sync(seeds, out=tmp_path / "out")
    checkpoint = next((tmp_path / "out").rglob("harden.jsonl"))  # the stage's line for the seed: the seed and its round
    line = json.loads(checkpoint.read_text(encoding="utf-8").splitlines()[0])
    assert {row["id"]: row["origin"] for row in line["outputs"]} == {"s1": "seed", "s1-h1": expected}


def test_reports_group_rows_by_what_their_origin_means():
    from orca_math.report.html import difficulty_groups

    rows = [{"origin": "seed", "round": 0, "answer": "a"}, {"origin": "suggester_editor", "round": 1, "answer": "bb"},
            {"origin": "suggester_editor", "round": 2, "answer": "ccc"}, {"origin": "ask_me_anything", "round": 0, "answer": "d"},
            {"origin": "simplifier", "round": 0, "answer": "e"}]
    assert [group["label"] for group in difficulty_groups(rows)] == [
        "seed (round 0)", "round 1", "round 2", "ask-me-anything", "simplifier"]


def test_an_agent_plug_in_that_is_no_agent_class_is_left_out_with_one_warning(caplog):
    # Reports and dataset cards read origins row by row: a broken plug-in was warned about once per row.
    from orca_math.agents import AGENTS

    AGENTS.add("not_an_agent", lambda model: None, help="a function, not an Agent class")
    try:
        with caplog.at_level("WARNING", logger="orca_math.agents.registry"):
            for _ in range(3):
                assert origin_info("suggester_editor") is not None
            assert "not_an_agent" not in agent_classes()
        warned = [r for r in caplog.records if "not_an_agent" in r.getMessage()]
        assert len(warned) == 1 and "is not an orca_math.agents.Agent class" in warned[0].getMessage()
    finally:
        AGENTS.remove("not_an_agent")
