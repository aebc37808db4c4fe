"""The dataset card: front matter, recipe, counts, funnel, drops, decontamination, and no secrets."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import datasets
import pytest
from huggingface_hub import DatasetCard

from orca_math.dataset_card import build_card, scrub_secrets, size_category, write_card
from tests._report_helpers import make_generation_run

FAKE_ENV_KEY = "sk-envFAKEkey0123456789abcdef"
FAKE_CLIENT_KEY = "sk-clientFAKEkey9876543210zyx"


@pytest.fixture(scope="module")
def run_out(tmp_path_factory):
    return make_generation_run(tmp_path_factory.mktemp("card") / "out")


def _copy(run_out, tmp_path):
    target = tmp_path / "out"
    shutil.copytree(run_out, target)
    return target


def test_pipeline_writes_the_card_beside_the_dataset_and_the_dataset_still_loads(run_out):
    top = (run_out / "README.md").read_text(encoding="utf-8")
    assert (run_out / "dataset" / "README.md").read_text(encoding="utf-8") == top
    assert len(datasets.load_from_disk(str(run_out / "dataset"))) == json.loads((run_out / "summary.json").read_text())["funnel"]["final_rows"]


def test_front_matter_is_valid_hub_metadata(run_out):
    card = DatasetCard(build_card(run_out))
    data = card.data.to_dict()
    assert data["license"] == "other"
    assert data["language"] == ["en"]
    assert data["task_categories"] == ["text-generation", "question-answering"]
    assert data["size_categories"] == ["n<1K"]
    assert data["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]
    assert "License not set" in card.text


def test_license_option_and_bad_license(run_out):
    card = DatasetCard(build_card(run_out, license="cc-by-4.0"))
    assert card.data.license == "cc-by-4.0"
    assert "License not set" not in card.text
    with pytest.raises(ValueError, match="not a Hub license id"):
        build_card(run_out, license="CC BY 4.0")


def test_card_tells_how_the_data_was_made(run_out):
    text = build_card(run_out)
    manifest = json.loads(next((run_out / "runs").glob("*/manifest.json")).read_text())
    assert manifest["config"]["seeds_fingerprint"] in text
    assert f"orca-math {manifest['library_version']}" in text
    assert "2 Suggester/Editor round(s)" in text
    for stage in ("expand", "harden", "solve", "verify", "filter"):
        assert f"| {stage} |" in text
    assert '"max_answer_chars": 1800' in text
    assert "Model: `scripted`" in text


def test_counts_per_origin_match_the_dataset(run_out):
    text = build_card(run_out)
    dataset = datasets.load_from_disk(str(run_out / "dataset"))
    counts = Counter(zip(dataset["origin"], dataset["round"], strict=True))
    assert set(dataset["origin"]) == {"seed", "ask_me_anything", "suggester_editor"}
    for (origin, rnd), n in counts.items():
        assert f"| {origin} | {rnd} | {n} |" in text


def test_each_origin_is_described_by_the_card_of_the_agent_that_writes_it(run_out):
    from orca_math.agents import origins

    text = build_card(run_out)
    rows = [line for line in text.splitlines() if line.startswith(("| seed |", "| ask_me_anything |", "| suggester_editor |"))]
    assert {row.split("|")[1].strip() for row in rows} == {"seed", "ask_me_anything", "suggester_editor"}
    for row in rows:
        assert row.rstrip().endswith(f"| {origins()[row.split('|')[1].strip()].description} |"), row


def test_funnel_and_drops_by_reason(run_out):
    text = build_card(run_out)
    summary = json.loads((run_out / "summary.json").read_text())
    for stage in summary["funnel"]["stages"]:
        assert f"| {stage['name']} | {stage['inputs']} | {stage['outputs']} | {stage['failed']} | {stage['dropped']} |" in text
    assert "| verify | dropped | unverified | 1 |" in text
    assert "| verify | dropped | unsolvable | 1 |" in text
    assert "did not check the data against benchmark" in text


def test_decontamination_results_when_present(run_out, tmp_path):
    out = _copy(run_out, tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    summary["decontamination"] = {
        "method": "13-gram overlap of normalised words", "n": 13, "min_overlap": 1, "action": "drop",
        "references": {"gsm8k": 1319, "svamp": 1000}, "checked": 20, "contaminated": 2, "per_benchmark": {"gsm8k": 2, "svamp": 0},
    }
    (out / "summary.json").write_text(json.dumps(summary))
    text = build_card(out)
    assert "2 of 20 rows overlapped a benchmark" in text
    assert "| gsm8k | 1319 | 2 |" in text and "| svamp | 1000 | 0 |" in text


def test_columns_are_described(run_out):
    text = build_card(run_out)
    for column in datasets.load_from_disk(str(run_out / "dataset")).column_names:
        line = next(line for line in text.splitlines() if line.startswith(f"| `{column}` |"))
        assert len(line) > len(column) + 12  # a real description, not an empty cell


def test_card_never_contains_an_api_key(run_out, tmp_path, monkeypatch):
    from orca_math.models import load_model
    from orca_math.pipeline import Pipeline

    monkeypatch.setenv("OPENAI_API_KEY", FAKE_ENV_KEY)
    out = _copy(run_out, tmp_path)
    client = load_model("openai:gpt-4o-mini", api_key=FAKE_CLIENT_KEY, base_url="http://user:pw-secret-123@127.0.0.1:9/v1")
    manifest = json.loads(next((out / "runs").glob("*/manifest.json")).read_text())
    manifest["config"] = Pipeline(model=client).config([{"question": "q", "answer": "1"}], {})
    # A future stage that (wrongly) keeps a key among its params must not leak it either.
    manifest["config"]["stages"][0]["params"]["api_key"] = FAKE_CLIENT_KEY
    manifest["config"]["stages"][0]["params"]["note"] = f"called with {FAKE_ENV_KEY}"
    summary = json.loads((out / "summary.json").read_text())
    paths = write_card(out, summary, manifest)
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert FAKE_ENV_KEY not in text and FAKE_CLIENT_KEY not in text and "pw-secret-123" not in text
        assert "gpt-4o-mini" in text  # the model is named, only its credentials are not


def test_scrub_secrets_patterns(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "plain-looking-value-42")
    text = scrub_secrets("a hf_abcdefghijklmnopqrstu b https://bob:hunter22@x.org c plain-looking-value-42 max_tokens=5")
    assert "hf_abc" not in text and "hunter22" not in text and "plain-looking" not in text
    assert "max_tokens=5" in text


@pytest.mark.parametrize(("rows", "bucket"), [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (200_000, "100K<n<1M")])
def test_size_category(rows, bucket):
    assert size_category(rows) == bucket


def test_card_for_a_folder_without_summary_fails_clearly(tmp_path):
    from orca_math.report import ReportError

    with pytest.raises(ReportError, match="no summary.json"):
        build_card(tmp_path)
