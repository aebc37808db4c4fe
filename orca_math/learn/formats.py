"""TRL's dataset formats, and the Orca-Math prompt format, in one place.

The paper trains on ``USER: {question}\\nASSISTANT: {answer}`` with the loss on the answer only. We
split that text into TRL's explicit *prompt* and *completion* as ``"USER: {question}\\nASSISTANT:"``
and ``" {answer}"``: the concatenation is exactly the paper's text, and the prompt ends on a token
boundary. (Ending the prompt with the space instead makes BPE tokenizers merge that space into the
answer's first token, so TRL would drop it from the prompt and train on a context the model never
sees at inference.) Sample a trained model with :func:`orca_prompt` and strip the reply.

Formats (https://huggingface.co/docs/trl/dataset_formats), each *standard* (strings) or
*conversational* (lists of ``{"role", "content"}`` messages):

* SFT: ``prompt``/``completion`` (or ``messages``, or ``text``);
* DPO: ``prompt``/``chosen``/``rejected`` (explicit prompt);
* KTO: ``prompt``/``completion``/``label`` (bool).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import datasets

from orca_math.errors import InputError

Style = Literal["standard", "conversational"]
Kind = Literal["sft", "dpo", "kto"]

ORCA_PROMPT_TEMPLATE = "USER: {question}\nASSISTANT:"

# The Orca format as a chat template, for serving a checkpoint with a chat API (vLLM, `hf:`): a
# system message becomes a line of its own, user turns become the prompt above, assistant turns
# " {answer}" + EOS. See `orca_chat_template` for the BOS token.
ORCA_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\\n' }}"
    "{% elif message['role'] == 'user' %}{{ 'USER: ' + message['content'] | trim + '\\nASSISTANT:' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] | trim + eos_token + '\\n' }}"
    "{% endif %}{% endfor %}"
)


def orca_chat_template(tokenizer: Any) -> str:
    """`ORCA_CHAT_TEMPLATE`, starting with the BOS token when `tokenizer` adds one to plain text.

    Chat servers tokenize a rendered template without adding special tokens, while TRL tokenized
    the training text with them; this keeps the two identical (e.g. Mistral's ``<s>``).
    """
    ids = tokenizer("x")["input_ids"]
    adds_bos = tokenizer.bos_token_id is not None and bool(ids) and ids[0] == tokenizer.bos_token_id
    return ("{{ bos_token }}" if adds_bos else "") + ORCA_CHAT_TEMPLATE


# Columns each format needs, in TRL's order.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "sft": ("prompt", "completion"),
    "dpo": ("prompt", "chosen", "rejected"),
    "kto": ("prompt", "completion", "label"),
}
_SFT_ALTERNATIVES = (("prompt", "completion"), ("messages",), ("text",))


class DatasetFormatError(InputError):
    """A dataset does not have the columns or value types its trainer expects."""


def orca_prompt(question: str) -> str:
    """The paper's prompt for a question: ``"USER: {question}\\nASSISTANT:"``."""
    return ORCA_PROMPT_TEMPLATE.format(question=question.strip())


def orca_completion(answer: str) -> str:
    """The completion that follows :func:`orca_prompt`: the answer after one space."""
    return " " + answer.strip()


def make_prompt(question: str, style: Style = "standard") -> str | list[dict[str, str]]:
    """A TRL prompt for `question`: the Orca text, or one user message when conversational."""
    _check_style(style)
    if style == "conversational":
        return [{"role": "user", "content": question.strip()}]
    return orca_prompt(question)


def make_completion(answer: str, style: Style = "standard") -> str | list[dict[str, str]]:
    """A TRL completion for `answer`: the Orca text, or one assistant message when conversational."""
    _check_style(style)
    if style == "conversational":
        return [{"role": "assistant", "content": answer.strip()}]
    return orca_completion(answer)


def sft_dataset(rows: Iterable[Mapping[str, Any]], style: Style = "standard") -> datasets.Dataset:
    """Build an SFT dataset (prompt/completion) from rows with ``question`` and ``answer``.

    Args:
        rows: e.g. the orca-math-200k rows, or `DatasetRow.to_row()` dicts; other keys are ignored.
        style: ``"standard"`` (the paper's text format) or ``"conversational"`` (messages).

    Raises:
        DatasetFormatError: a row lacks ``question`` or ``answer``, or there are no rows.
    """
    prompts, completions = [], []
    for index, row in enumerate(rows):
        missing = [key for key in ("question", "answer") if not isinstance(row.get(key), str)]
        if missing:
            raise DatasetFormatError(
                f"Row {index} needs string fields 'question' and 'answer'; missing or not text: "
                f"{', '.join(missing)} (found keys: {', '.join(sorted(row)) or 'none'})."
            )
        prompts.append(make_prompt(row["question"], style))
        completions.append(make_completion(row["answer"], style))
    if not prompts:
        raise DatasetFormatError("An SFT dataset needs at least one row with 'question' and 'answer'.")
    return datasets.Dataset.from_dict({"prompt": prompts, "completion": completions})


def validate_format(dataset: datasets.Dataset, kind: Kind) -> None:
    """Check that `dataset` is in TRL's format for `kind` ("sft", "dpo" or "kto").

    Checks the columns, that every text column of a row is of one style (all strings or all
    message lists), and for KTO that ``label`` is boolean. Raises on the first problem.

    Raises:
        DatasetFormatError: with the columns found and what is missing or wrong.
    """
    if kind not in REQUIRED_COLUMNS:
        raise DatasetFormatError(f"Unknown dataset kind {kind!r}: use 'sft', 'dpo' or 'kto'.")
    found = list(dataset.column_names)
    if kind == "sft":
        if not any(all(column in found for column in option) for option in _SFT_ALTERNATIVES):
            raise DatasetFormatError(
                "An SFT dataset needs the columns prompt and completion (or messages, or text); "
                f"found: {', '.join(found) or 'none'}."
            )
    else:
        missing = [column for column in REQUIRED_COLUMNS[kind] if column not in found]
        if missing:
            raise DatasetFormatError(
                f"A {kind.upper()} dataset needs the columns {', '.join(REQUIRED_COLUMNS[kind])}; "
                f"missing: {', '.join(missing)}; found: {', '.join(found) or 'none'}."
            )
    if len(dataset) == 0:
        raise DatasetFormatError(f"The {kind.upper()} dataset has no rows.")
    candidates = ("prompt", "completion", "chosen", "rejected", "messages", "text")
    text_columns = [column for column in candidates if column in found]
    if kind == "sft":
        text_columns = [c for c in text_columns if c in ("prompt", "completion")] or text_columns[:1]
    for index, row in enumerate(dataset.select_columns(text_columns)):
        styles = {column: _style_of(row[column]) for column in text_columns}
        if None in styles.values():
            bad = next(column for column, style in styles.items() if style is None)
            raise DatasetFormatError(
                f"Row {index}: column {bad!r} must be a string or a list of {{'role', 'content'}} messages, "
                f"got {type(row[bad]).__name__}."
            )
        if len(set(styles.values())) > 1:
            raise DatasetFormatError(
                f"Row {index} mixes standard and conversational columns: {styles}; use one style per row."
            )
    if kind == "kto":
        labels = dataset["label"]
        bad = next((value for value in labels if not isinstance(value, bool)), None)
        if bad is not None:
            raise DatasetFormatError(f"A KTO dataset's 'label' column must be True/False, got {bad!r}.")


def _style_of(value: Any) -> str | None:
    if isinstance(value, str):
        return "standard"
    if isinstance(value, list) and all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in value):
        return "conversational"
    return None


def _check_style(style: str) -> None:
    if style not in ("standard", "conversational"):
        raise InputError(f"Unknown style {style!r}: use 'standard' or 'conversational'.")
