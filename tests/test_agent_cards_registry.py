"""A new agent is a card, a template and a class: its class and its dry-run hint are read from its card."""

from __future__ import annotations

import pytest

from orca_math.agents import AGENT_CLASSES, Agent, CardError, shipped_cards, typical_completion_tokens
from orca_math.agents.cards import parse_card
from orca_math.resources import resource_dir

CARD = {"name": "checker", "role": "You check problems.", "template": "checker.jinja", "inputs": ["question"],
        "output_format": "text"}


def test_every_card_in_the_folder_has_its_class_and_its_estimate_hint():
    folder = {path.stem for path in resource_dir("agents").glob("*.yaml")}
    assert set(AGENT_CLASSES) == folder
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
