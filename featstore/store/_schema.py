"""The store schema, versions 1 and 2: group names, variables, dims and attrs in one place.

``docs/store-spec.md`` is the prose version of this module; keep the two in step.
Everything that reads or writes a store takes its names from here.
"""

from __future__ import annotations

import re

# The highest schema this featstore reads. Version 1 is one story's layout (stimulus, fmri,
# features, results at the root); version 2 is a collection of stories, each a version-1
# layout nested at ``stories/<story>`` (docs/store-spec.md).
SCHEMA_VERSION = 2
STORY_SCHEMA = 1
COLLECTION_SCHEMA = 2
STORIES = "stories"
STORY_ATTR = "story"
SCHEMA_ATTR = "featstore_schema"
ZARR_FORMAT = 3

# Root group
ROOT_ATTRS = ("featstore_schema", "dataset", "tr_seconds", "n_tr", "created")
# Root group of a store of stories (each story's root has ROOT_ATTRS and ``story``)
COLLECTION_ROOT_ATTRS = ("featstore_schema", "dataset", "tr_seconds", "created")

# Top-level groups
STIMULUS = "stimulus"
FMRI = "fmri"
FEATURES = "features"
RESULTS = "results"
# Internal area for staged (resumable) writes and lock files; never part of the schema.
WORK = "_work"

# Completion flag, written last on every group a featstore writer creates.
COMPLETE_ATTR = "complete"

# stimulus
WORD_DIM = "word"
SAMPLE_DIM = "sample"
STIMULUS_WORD_VARS = ("word", "word_lower", "onset", "offset", "tr_index")
STIMULUS_FLAG_VARS = ("time_filled", "word_missing")
STIMULUS_AUDIO_VAR = "audio"
STIMULUS_ATTRS = ("audio_sha256", "sample_rate", "align_sha256", "tr_assign", "stimulus_sha256")
AUDIO_SAMPLE_RATE = 16_000
TR_ASSIGN_RULES = ("ceil", "floor")

# fmri
SUBJECT_DIM = "subject"
TR_DIM = "tr"
# Coordinate on every ``tr`` dim: seconds on the scan clock at each TR's start (tr * TR).
# Written by write_group; stores written before it lack it and read the same.
TR_TIME_COORD = "time"
ROI_DIM = "roi"
BOLD_VAR = "bold"
BOLD_DIMS = (SUBJECT_DIM, TR_DIM, ROI_DIM)
ROI_NAME_COORD = "roi_name"
HEMISPHERE_COORD = "hemisphere"
FMRI_ATTRS = ("atlas", "source")
NOISE_CEILING_VAR = "noise_ceiling"

# eeg (featstore dataset import-eeg): continuous EEG/MEG on the story clock, in volts/tesla
EEG = "eeg"
TIME_DIM = "time"
CHANNEL_DIM = "channel"
EEG_DATA_VAR = "data"
EEG_DIMS = (SUBJECT_DIM, TIME_DIM, CHANNEL_DIM)
EEG_ATTRS = ("sfreq", "onsets", "filter", "source")
LAG_DIM = "lag"

# features/<key>/<window>
LAYER_DIM = "layer"
DIM_DIM = "dim"
HIDDEN_VAR = "hidden"
HIDDEN_DIMS = (LAYER_DIM, TR_DIM, DIM_DIM)
WORD_HIDDEN_VAR = "word_hidden"
WORD_HIDDEN_DIMS = (LAYER_DIM, WORD_DIM, DIM_DIM)
HAS_WORDS_VAR = "has_words"
FEATURE_ATTRS = (
    "model_id",
    "revision",
    "modality",
    "pooling",
    "layers",
    "stimulus_sha256",
    "featstore_version",
    COMPLETE_ATTR,
)
MODALITIES = ("text", "audio", "multimodal", "lowlevel")
# The window kind each modality is stored under: text per word with ctxN words of context;
# the others per TR with trN TRs of audio (word rate, which has no audio window, as tr1).
MODALITY_WINDOW_KIND = {"text": "ctx", "audio": "tr", "multimodal": "tr", "lowlevel": "tr"}
FEATURE_DTYPES = ("float32", "float16")

# results/<run_id>
CONFIG_DIM = "config"
RESULT_VARS = ("r", "alpha")
RESULT_DIMS = (CONFIG_DIM, SUBJECT_DIM, ROI_DIM)
RESULT_ATTRS = ("settings", "created", COMPLETE_ATTR)
# results/<run_id>/stats: permutation p-values of the run (evaluate significance)
RESULT_STATS = "stats"

# results/<run_id> of the analyses beyond encoding (evaluate rsa / similarity / lowlevel):
# the attr ``analysis`` names the kind; encoding runs (evaluate grid) have no such attr
ANALYSIS_ATTR = "analysis"
ROI_GROUP_DIM = "roi_group"
METRIC_DIM = "metric"
ANALYSIS_VARS = {
    "rsa": {
        "rho": (ROI_GROUP_DIM, LAYER_DIM, SUBJECT_DIM),
        "rho_mean": (ROI_GROUP_DIM, LAYER_DIM),
        "p": (ROI_GROUP_DIM, LAYER_DIM),
        "p_fwe": (ROI_GROUP_DIM, LAYER_DIM),
    },
    "similarity": {"score": (METRIC_DIM, LAYER_DIM, SUBJECT_DIM)},
    "lowlevel": {
        "r_orig": (LAYER_DIM, SUBJECT_DIM, ROI_DIM),
        "r_resid": (LAYER_DIM, SUBJECT_DIM, ROI_DIM),
        "drop": (LAYER_DIM, ROI_DIM),
        "p": (LAYER_DIM, ROI_DIM),
        "q": (LAYER_DIM, ROI_DIM),
    },
    "trf": {
        "r": (LAYER_DIM, SUBJECT_DIM, CHANNEL_DIM),
        "alpha": (LAYER_DIM, SUBJECT_DIM, CHANNEL_DIM),
    },
    "similarity_time": {"score": (METRIC_DIM, LAYER_DIM, TIME_DIM, SUBJECT_DIM)},
}
ANALYSIS_ATTRS = (ANALYSIS_ATTR, "settings", "features", "fmri", "created", COMPLETE_ATTR)

# Names
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_WINDOW_RE = re.compile(r"^(ctx|tr)([1-9][0-9]*)$")
_RUN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
WINDOW_KINDS = {
    "ctx": "words of context (text)",
    "tr": "TRs of audio (audio, multimodal, lowlevel)",
}
