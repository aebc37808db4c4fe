"""Learning from generated data: TRL dataset formats, preference building, presets, trainer adapters.

Nothing here imports the generation code (agents, pipeline, engine); torch, transformers and TRL
are imported only when a trainer runs.
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
]
