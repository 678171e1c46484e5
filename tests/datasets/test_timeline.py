import numpy as np
import pytest

from featstore.datasets import assign_tr, stimulus_sha256
from featstore.datasets.timeline import audio_tr_count
from featstore.errors import InputError

ONSETS = np.array([0.0, 0.4, 1.5, 1.6, 3.0, 4.49, 0.1 + 0.2])


def test_ceil_and_floor_rules():
    np.testing.assert_array_equal(assign_tr(ONSETS, tr=1.5), [0, 1, 1, 2, 2, 3, 1])
    np.testing.assert_array_equal(assign_tr(ONSETS, tr=1.5, rule="floor"), [0, 0, 1, 1, 2, 2, 0])
    # the story starts 1.5 s (one TR) into the scan: every index moves by one
    np.testing.assert_array_equal(
        assign_tr(ONSETS, tr=1.5, stim_onset=1.5), assign_tr(ONSETS, tr=1.5) + 1
    )
    np.testing.assert_array_equal(
        assign_tr(ONSETS, tr=1.5, stim_onset=0.5), np.ceil((ONSETS + 0.5) / 1.5).astype(int)
    )


def test_boundary_is_exact_despite_float_noise():
    # 0.1 + 0.2 = 0.30000000000000004 lies on a TR boundary of a 0.1 s TR
    assert assign_tr(np.array([0.1 + 0.2]), tr=0.1).tolist() == [3]
    assert assign_tr(np.array([0.1 + 0.2]), tr=0.1, rule="floor").tolist() == [3]


def test_audio_tr_count():
    assert audio_tr_count(10.0, tr=1.5) == 7
    assert audio_tr_count(9.0, tr=1.5) == 6
    assert audio_tr_count(9.0, tr=1.5, stim_onset=0.1) == 7


def test_stimulus_sha256_changes_with_each_part():
    base = {"tr": 1.5, "stim_onset": 0.0, "tr_assign": "ceil"}
    reference = stimulus_sha256("a" * 64, "b" * 64, **base)
    assert reference == stimulus_sha256("a" * 64, "b" * 64, **base)
    variants = [
        stimulus_sha256("c" * 64, "b" * 64, **base),
        stimulus_sha256("a" * 64, "c" * 64, **base),
        stimulus_sha256("a" * 64, "b" * 64, **{**base, "tr": 2.0}),
        stimulus_sha256("a" * 64, "b" * 64, **{**base, "stim_onset": 3.0}),
        stimulus_sha256("a" * 64, "b" * 64, **{**base, "tr_assign": "floor"}),
    ]
    assert len({reference, *variants}) == 6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tr": 0}, "tr=0"),
        ({"tr": float("nan")}, "tr=nan"),
        ({"tr": 1.5, "stim_onset": -1.0}, "stim_onset=-1.0"),
        ({"tr": 1.5, "rule": "round"}, "tr_assign='round'"),
    ],
)
def test_bad_timing(kwargs, message):
    with pytest.raises(InputError, match=message):
        assign_tr(ONSETS, **kwargs)
