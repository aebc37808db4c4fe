"""Push a generated dataset and its card to the Hugging Face Hub.

The data goes up with `datasets.Dataset.push_to_hub` (parquet shards under `data/`), then the card
with `huggingface_hub.HfApi.upload_file` as `README.md`, replacing the minimal card that
`push_to_hub` writes. The token is passed through to those libraries and never printed or stored;
when it is None they read `HF_TOKEN` or the cached login.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orca_math.errors import ConfigError


class PushError(ConfigError):
    """A push that cannot start: bad repository id, no dataset, bad license."""


@dataclass
class PushPlan:
    """What a push uploads (or uploaded).

    Attributes:
        repo_id: the dataset repository, `owner/name`.
        private: whether the repository is created private.
        rows: rows in the dataset.
        files: the paths written in the repository.
        card: the dataset card's text (uploaded as `README.md`).
        dry_run: True when nothing was uploaded.
        url: the repository's address once pushed.
    """

    repo_id: str
    private: bool
    rows: int
    files: list[str] = field(default_factory=list)
    card: str = ""
    dry_run: bool = True
    url: str | None = None

    def describe(self) -> str:
        """A few lines for a terminal; never includes a token."""
        verb = "would upload" if self.dry_run else "uploaded"
        lines = [f"{verb} to https://huggingface.co/datasets/{self.repo_id} ({'private' if self.private else 'public'}):"]
        lines += [f"  {name}" for name in self.files]
        lines.append(f"rows: {self.rows}; card: {len(self.card.splitlines())} lines")
        return "\n".join(lines)


def _check_repo_id(repo_id: str) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not repo_id or repo_id.count("/") != 1:
        raise PushError(f"repository id {repo_id!r} should be 'owner/name', for example 'my-org/orca-math-demo'.")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise PushError(f"repository id {repo_id!r} is not valid: {exc}") from None


def push_to_hub(
    out_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    license: str | None = None,
    dry_run: bool = False,
) -> PushPlan:
    """Upload `out_dir/dataset` and its dataset card to a Hub dataset repository.

    Args:
        out_dir: the output folder of `orca-math generate`.
        repo_id: the dataset repository, `owner/name`; created when missing.
        private: create the repository private.
        token: a Hub token; None uses `HF_TOKEN` or the cached login.
        license: a Hub license id for the card (`other` when None).
        dry_run: build the plan and the card without touching the network.

    Returns:
        The plan, with `dry_run=False` and `url` set once pushed.

    Raises:
        PushError: a malformed repository id or license, or no dataset in `out_dir`.
    """
    from orca_math.dataset_card import build_card, check_license
    from orca_math.engine.folder import OutputFolder, OutputFolderError

    _check_repo_id(repo_id)
    try:
        check_license(license)
        folder = OutputFolder.open(out_dir)
    except (ValueError, OutputFolderError) as exc:
        raise PushError(str(exc)) from None
    dataset = folder.dataset()
    if dataset is None:
        raise PushError(f"{folder.path / 'dataset'} is missing; run `orca-math generate --out {folder.path}` first.")
    card = build_card(folder.path, license=license, repo_id=repo_id)
    plan = PushPlan(
        repo_id=repo_id,
        private=private,
        rows=len(dataset),
        files=["data/train-*.parquet", "README.md"],
        card=card,
        dry_run=True,
    )
    if dry_run:
        return plan

    from huggingface_hub import HfApi

    dataset.push_to_hub(repo_id, private=private, token=token, commit_message="Add orca-math dataset")
    HfApi(token=token).upload_file(
        path_or_fileobj=card.encode("utf-8"),
        path_in_repo="README.md",
        repo_id=repo_id,
        repo_type="dataset",
        commit_message="Add dataset card",
    )
    plan.dry_run = False
    plan.url = f"https://huggingface.co/datasets/{repo_id}"
    return plan


__all__ = ["PushError", "PushPlan", "push_to_hub"]
