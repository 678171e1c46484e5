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
    "alpha": "--alpha",
    "alphas": "--alphas",
    "backend": "--backend",
    "compare": "--compare",
    "controls": "--control",
    "cv": "--cv",
    "delays": "--delays",
    "device": "--device",
    "distance": "--distance",
    "dtype": "--dtype",
    "fir_offset": "--fir-offset",
    "fir_window": "--fir-window",
    "fusions": "--fusion",
    "gap": "--gap",
    "layers": "--layers",
    "method": "--method",
    "metrics": "--metric",
    "model": "--model",
    "models": "--model",
    "n_threads": "--threads",
    "overwrite": "--overwrite",
    "partial": "--partial",
    "pca": "--pca",
    "roi_groups_file": "--roi-groups-file",
    "rsa_compare": "--compare",
    "rsa_distance": "--distance",
    "run_id": "--run",
    "scheduler": "--scheduler",
    "segment": "--segment",
    "subset": "--subset",
    "test_frac": "--test-frac",
    "trim": "--trim",
    "windows": "--ctx or --tr-win",
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
