"""The library's parameter names as the CLI's flags, in the messages the CLI prints.

Library messages name parameters as a Python user writes them: ``trim=-1`` for a value,
```trim``` for the parameter itself (``EncodingSettings(trim=-1)`` raises "trim=-1:
expected 0 or more TRs"). The CLI prints the same message in its own words: ``--trim -1``
and ``--trim``. This table is the one place that maps a parameter to its flag.
"""

from __future__ import annotations

import re

#: Parameter name → CLI flag, for every parameter a library message may name.
PARAMETER_FLAGS = {
    "align": "--align",
    "allow_pickle": "--allow-pickle",
    "alpha": "--alpha",
    "alphas": "--alphas",
    "audio": "--audio",
    "backend": "--backend",
    "batch_size": "--batch-size",
    "bids": "--bids",
    "block_words": "--block-words",
    "compare": "--compare",
    "continuous": "--continuous",
    "controls": "--control",
    "ctx": "--ctx",
    "cv": "--cv",
    "delays": "--delays",
    "device": "--device",
    "device_map": "--device-map",
    "distance": "--distance",
    "dtype": "--dtype",
    "eeg": "--eeg",
    "fir_offset": "--fir-offset",
    "fir_window": "--fir-window",
    "fmri": "--fmri",
    "fusions": "--fusion",
    "gap": "--gap",
    "h_freq": "--h-freq",
    "l_freq": "--l-freq",
    "lanczos_cutoff": "--lanczos-cutoff",
    "lanczos_window": "--lanczos-window",
    "layers": "--layers",
    "mask": "--mask",
    "max_memory": "--max-memory",
    "mesh_dir": "--mesh",
    "method": "--method",
    "metrics": "--metric",
    "modality": "--modality",
    "model": "--model",
    "models": "--model",
    "montage": "--montage",
    "n_threads": "--threads",
    "offload_folder": "--offload-folder",
    "onset": "--onset",
    "onset_event": "--onset-event",
    "out_dir": "--out",
    "overwrite": "--overwrite",
    "parcellate": "--parcellate",
    "parcels": "--parcels",
    "partial": "--partial",
    "pca": "--pca",
    "pipeline": "--pipeline",
    "pool": "--pool",
    "precision": "--precision",
    "roi_groups_file": "--roi-groups-file",
    "roi_names": "--roi-names",
    "rsa_compare": "--compare",
    "rsa_distance": "--distance",
    "run_id": "--run",
    "scheduler": "--scheduler",
    "segment": "--segment",
    "sfreq": "--resample",
    "space": "--space",
    "stim_onset": "--stim-onset",
    "store": "--store",
    "story": "--story",
    "stride": "--stride",
    "subjects": "--subjects",
    "subset": "--subset",
    "tasks": "--tasks",
    "test_frac": "--test-frac",
    "tmin": "--tmin",
    "to_tr": "--to-tr",
    "tr": "--tr",
    "transcript": "--transcript",
    "tr_assign": "--tr-assign",
    "tr_tolerance": "--tr-tolerance",
    "tr_wins": "--tr-win",
    "trim": "--trim",
    "trim_to_shortest": "--trim-to-shortest",
    "weights": "--weights",
    "windows": "--ctx or --tr-win",
    "word_context": "--word-context",
    "words": "--words",
}

_NAMES = "|".join(sorted(PARAMETER_FLAGS, key=len, reverse=True))
# `name` (the parameter) or name= (followed by its value), not inside a longer word
_PARAMETER = re.compile(rf"`({_NAMES})`|(?<![\w.`-])({_NAMES})=")


def as_flags(message: str) -> str:
    """``message`` with the parameters it names written as the CLI's flags.

    Examples
    --------
    >>> as_flags("trim=-1: expected 0 or more TRs")
    '--trim -1: expected 0 or more TRs'
    >>> as_flags("give `delays` or `fir_window`, not both")
    'give --delays or --fir-window, not both'
    """

    def flag(match: re.Match[str]) -> str:
        if match.group(1):
            return PARAMETER_FLAGS[match.group(1)]
        return PARAMETER_FLAGS[match.group(2)] + " "

    return _PARAMETER.sub(flag, message)
