"""Hub push, offline: the dry run, and the real call path with the upload functions recorded."""

from __future__ import annotations

import inspect
import shutil

import datasets
import huggingface_hub
import pytest
from huggingface_hub import DatasetCard

from orca_math.cli import main
from orca_math.hub import PushError, push_to_hub
from tests._report_helpers import make_generation_run

FAKE_TOKEN = "hf_FAKEtokenFAKEtokenFAKE1234"


@pytest.fixture(scope="module")
def run_out(tmp_path_factory):
    return make_generation_run(tmp_path_factory.mktemp("push") / "out")


@pytest.fixture
def hub_calls(monkeypatch):
    """Record what would go to the Hub instead of sending it."""
    calls: list[tuple[str, dict]] = []
    # Binding to the real signatures makes a renamed or removed argument fail here, not on the Hub.
    push_signature = inspect.signature(datasets.Dataset.push_to_hub)
    upload_signature = inspect.signature(huggingface_hub.HfApi.upload_file)

    def fake_push(self, repo_id, **kwargs):
        push_signature.bind(self, repo_id, **kwargs)
        calls.append(("dataset", {"repo_id": repo_id, "rows": len(self), **kwargs}))

    def fake_upload(self, **kwargs):
        upload_signature.bind(self, **kwargs)
        calls.append(("upload", {"token": self.token, **kwargs}))

    monkeypatch.setattr(datasets.Dataset, "push_to_hub", fake_push)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_file", fake_upload)
    return calls


def test_dry_run_plans_without_network(run_out, hub_calls):
    plan = push_to_hub(run_out, "me/orca-demo", dry_run=True)
    assert hub_calls == []
    assert plan.dry_run and plan.url is None
    assert plan.repo_id == "me/orca-demo" and plan.private is False
    assert plan.rows == len(datasets.load_from_disk(str(run_out / "dataset")))
    assert "README.md" in plan.files
    assert 'load_dataset("me/orca-demo", split="train")' in plan.card
    assert "would upload" in plan.describe()


def test_push_uploads_the_data_then_the_card_as_readme(run_out, hub_calls):
    plan = push_to_hub(run_out, "me/orca-demo", private=True, token=FAKE_TOKEN, license="mit")
    assert [kind for kind, _ in hub_calls] == ["dataset", "upload"]  # the card replaces push_to_hub's own README
    data, upload = hub_calls[0][1], hub_calls[1][1]
    assert data["repo_id"] == "me/orca-demo" and data["private"] is True and data["token"] == FAKE_TOKEN
    assert data["rows"] == plan.rows
    assert upload["repo_id"] == "me/orca-demo" and upload["repo_type"] == "dataset"
    assert upload["path_in_repo"] == "README.md"
    assert upload["token"] == FAKE_TOKEN
    card = upload["path_or_fileobj"].decode("utf-8")
    assert card == plan.card
    assert DatasetCard(card).data.license == "mit"
    assert FAKE_TOKEN not in card
    assert not plan.dry_run and plan.url == "https://huggingface.co/datasets/me/orca-demo"


def test_cli_push_never_prints_the_token(run_out, hub_calls, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    assert main(["push", str(run_out), "--repo", "me/orca-demo", "--private", "--license", "cc-by-4.0"]) == 0
    printed = capsys.readouterr()
    assert FAKE_TOKEN not in printed.out + printed.err
    assert "uploaded to https://huggingface.co/datasets/me/orca-demo (private)" in printed.out
    assert hub_calls[0][1]["private"] is True


def test_cli_dry_run_prints_the_card(run_out, hub_calls, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    assert main(["push", str(run_out), "--repo", "me/orca-demo", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert hub_calls == []
    assert "would upload" in out and "--- README.md ---" in out and "## Funnel" in out
    assert FAKE_TOKEN not in out


@pytest.mark.parametrize("repo", ["no-owner", "me/bad name", "a/b/c", ""])
def test_bad_repository_ids_are_refused(run_out, hub_calls, repo):
    with pytest.raises(PushError, match="repository id"):
        push_to_hub(run_out, repo)
    assert hub_calls == []


def test_missing_dataset_and_bad_license(run_out, tmp_path, hub_calls, capsys):
    out = tmp_path / "out"
    shutil.copytree(run_out, out)
    with pytest.raises(PushError, match="license"):
        push_to_hub(out, "me/x", license="Not A License")
    shutil.rmtree(out / "dataset")
    with pytest.raises(PushError, match="dataset is missing"):
        push_to_hub(out, "me/x")
    assert main(["push", str(out), "--repo", "me/x"]) == 2
    assert "dataset is missing" in capsys.readouterr().err
    assert hub_calls == []
