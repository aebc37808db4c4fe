"""Learning from generated data: TRL dataset formats, preference building, presets, trainer adapters.

The formats, preferences, presets and trainer adapters never import the generation code (agents,
pipeline, engine); torch, transformers and TRL are imported only when a trainer runs. The loop's
sampling, labelling and `IterativeLearner` modules do use the engine and the grader: they load
lazily, on first use, so importing this package stays light.
"""

from orca_math.learn.formats import (
    ORCA_CHAT_TEMPLATE,
    DatasetFormatError,
    make_completion,
    make_prompt,
    orca_chat_template,
    orca_completion,
    orca_prompt,
    sft_dataset,
    validate_format,
)
from orca_math.learn.preferences import (
    PreferenceData,
    PreferenceOptions,
    PreferenceStats,
    build_preferences,
    suggest_kto_weights,
)
from orca_math.learn.presets import PRESETS, TrainingPreset, get_preset
from orca_math.learn.trainers import DPOAdapter, KTOAdapter, SFTAdapter, Trainer, get_trainer

__all__ = [
    "ORCA_CHAT_TEMPLATE",
    "DatasetFormatError",
    "make_completion",
    "make_prompt",
    "orca_chat_template",
    "orca_completion",
    "orca_prompt",
    "sft_dataset",
    "validate_format",
    "PreferenceData",
    "PreferenceOptions",
    "PreferenceStats",
    "build_preferences",
    "suggest_kto_weights",
    "PRESETS",
    "TrainingPreset",
    "get_preset",
    "DPOAdapter",
    "KTOAdapter",
    "SFTAdapter",
    "Trainer",
    "get_trainer",
    "accepts_seed",
    "problem_rows",
    "sample_responses",
    "grade_attempt",
    "label_attempts",
    "read_attempts",
    "IterativeLearner",
    "IterationResult",
]

# Sampling, labelling and the loop call models and graders: they load on first use, so importing the
# trainers and formats above never pulls in the generation code.
_LAZY = {
    "accepts_seed": "orca_math.learn.sampling",
    "problem_rows": "orca_math.learn.sampling",
    "sample_responses": "orca_math.learn.sampling",
    "grade_attempt": "orca_math.learn.labelling",
    "label_attempts": "orca_math.learn.labelling",
    "read_attempts": "orca_math.learn.labelling",
    "IterativeLearner": "orca_math.learn.loop",
    "IterationResult": "orca_math.learn.loop",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
