import json

import numpy as np
import pytest

from featstore.errors import InputError
from featstore.evaluate import EncodingSettings, delays_from_fir


def test_defaults_follow_the_reference_study():
    settings = EncodingSettings()
    assert settings.delays == (1, 2, 3, 4) == delays_from_fir(4, 1)
    assert (settings.pca, settings.test_frac, settings.cv) == (250, 0.2, 5)
    assert settings.resolved_trim == 4
    assert settings.alphas[0] == pytest.approx(1e-2) and settings.alphas[-1] == pytest.approx(1e8)


def test_round_trip_through_json():
    settings = EncodingSettings(trim=3, gap=2, delays=(1, 2), alphas=(10.0, 1.0), method="banded")
    restored = EncodingSettings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert restored == settings
    assert restored.alphas == (1.0, 10.0)  # sorted on construction
    assert hash(restored) == hash(settings)


def test_numpy_grids_are_normalised():
    settings = EncodingSettings(alphas=np.logspace(0, 2, 3), delays=np.array([2, 1]))
    assert settings.alphas == (1.0, 10.0, 100.0)
    assert all(type(a) is float for a in settings.alphas)
    assert settings.delays == (2, 1) and all(type(d) is int for d in settings.delays)


def test_trim_default_covers_negative_delays():
    assert EncodingSettings(delays=(-3, 0, 1)).resolved_trim == 3
    assert EncodingSettings(trim=0).resolved_trim == 0


def test_fir_helper():
    assert delays_from_fir(8, 1) == tuple(range(1, 9))
    assert delays_from_fir(3, 0) == (0, 1, 2)
    with pytest.raises(InputError, match="fir_window=0"):
        delays_from_fir(0, 1)


@pytest.mark.parametrize(
    ("kwargs", "message", "cli_message"),
    [
        ({"test_frac": 1.0}, "test_frac=1.0", "--test-frac 1.0"),
        ({"gap": -1}, "gap=-1", "--gap -1"),
        ({"pca": -2}, "pca=-2", "--pca -2"),
        ({"delays": ()}, "`delays`", "--delays"),
        ({"delays": (1, 1)}, "distinct", "--delays [1, 1]: expected distinct"),
        ({"alphas": (1.0, -1.0)}, "-1.0 is not a positive", "--alphas: -1.0 is not"),
        ({"cv": 1}, "cv=1", "--cv 1"),
        ({"alpha": 0.0}, "alpha=0.0", "--alpha 0.0"),
        ({"method": "stack"}, "method='stack'", "--method 'stack'"),
        ({"dtype": "float16"}, "dtype='float16'", "--dtype 'float16'"),
        ({"trim": -1}, "trim=-1", "--trim -1: expected 0 or more TRs"),
    ],
)
def test_bad_values_name_the_parameter_and_the_cli_its_flag(kwargs, message, cli_message):
    from featstore.cli._flags import as_flags

    with pytest.raises(InputError, match=message) as raised:
        EncodingSettings(**kwargs)
    assert as_flags(str(raised.value)).startswith(cli_message)


def test_unknown_keys_are_refused():
    with pytest.raises(InputError, match="unknown encoding settings \\['folds'\\]"):
        EncodingSettings.from_dict({"folds": 3})
