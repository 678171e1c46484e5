"""Loading models: transformers' weight bars and report hidden, Hub download bars kept."""

from __future__ import annotations

from typing import ClassVar

import pytest

from featstore.errors import ModelError
from featstore.extract.common import load_pretrained
from featstore.extract.registry import ModelSpec

SPEC = ModelSpec("tiny", "org/tiny-model", "org--tiny-model", "audio", "audio", "wavlm")


class RecordingLoader:
    """Stands in for an Auto class: records what a download would show while it loads."""

    seen: ClassVar[dict] = {}

    @classmethod
    def from_pretrained(cls, model_id, **kwargs):
        from huggingface_hub.utils import are_progress_bars_disabled
        from transformers.utils import logging as hf_logging

        cls.seen = {
            "download_bars": not are_progress_bars_disabled(),
            "weight_bars": hf_logging.is_progress_bar_enabled(),
            "verbosity": hf_logging.get_verbosity(),
            "model_id": model_id,
        }
        if model_id == "org/missing":
            raise OSError("org/missing is not a local folder and is not a valid model id")
        return "loaded"


def test_a_first_download_shows_its_progress_while_transformers_bars_are_hidden():
    from transformers.utils import logging as hf_logging

    before = (hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity())
    assert load_pretrained(RecordingLoader, SPEC, None) == "loaded"
    assert RecordingLoader.seen["download_bars"] is True
    assert RecordingLoader.seen["weight_bars"] is False
    assert RecordingLoader.seen["verbosity"] == hf_logging.ERROR
    # everything is restored, also after a failed load
    assert (hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()) == before
    missing = ModelSpec("m", "org/missing", "org--missing", "audio", "audio", "wavlm")
    with pytest.raises(ModelError, match="org/missing"):
        load_pretrained(RecordingLoader, missing, None)
    assert (hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()) == before
