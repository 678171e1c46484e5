"""Sliding-window scores, within-sentence permutations and cluster p-values."""

from __future__ import annotations

import numpy as np
import pytest

from featstore.errors import InputError
from featstore.evaluate.eeg.inputs import sentence_index
from featstore.evaluate.metrics.alignment import rsa_spearman
from featstore.evaluate.metrics.timeresolved import (
    cluster_p,
    permutation_p,
    sliding_scores,
    window_starts,
    within_group_permutations,
)


def test_windows_and_within_group_permutations():
    np.testing.assert_array_equal(window_starts(11, 3, 2), [0, 2, 4, 6, 8])
    with pytest.raises(InputError):
        window_starts(11, 12, 1)
    groups = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    perms = within_group_permutations(groups, 20, seed=3)
    for perm in perms:
        np.testing.assert_array_equal(groups[perm], groups)
    assert len({tuple(p) for p in perms}) > 5


def test_sliding_scores_are_the_metric_of_each_window_averaged_over_groups():
    rng = np.random.default_rng(0)
    model, epochs = rng.standard_normal((12, 4)), rng.standard_normal((12, 9, 2))
    groups = np.repeat([0, 1, 2], 4)
    observed, null = sliding_scores(
        rsa_spearman,
        model,
        epochs,
        np.array([0, 3]),
        4,
        groups=groups,
        permutations=np.array([np.arange(12)[::-1]]),
    )
    expected = np.mean(
        [
            rsa_spearman(model[g * 4 : g * 4 + 4], epochs[g * 4 : g * 4 + 4, 3:7].reshape(4, -1))
            for g in range(3)
        ]
    )
    assert observed[1] == pytest.approx(expected) and null.shape == (1, 2)


def test_cluster_p_finds_a_run_of_planted_time_points():
    rng = np.random.default_rng(1)
    null = rng.standard_normal((200, 30))
    observed = np.zeros(30)  # the null's mean everywhere but the planted run
    observed[12:17] += 4.0
    p = cluster_p(observed, null)
    assert np.all(p[12:17] < 0.05) and np.all(p[:10] >= 0.05)
    assert permutation_p(np.array([10.0]), null[:, :1])[0] == pytest.approx(1 / 201)


def test_sentences_come_from_punctuation():
    words = np.array(["Once", "upon", "time.", "He", "said:", "“go!”", "U.S.", "then"])
    np.testing.assert_array_equal(sentence_index(words), [0, 0, 0, 1, 1, 1, 2, 3])
    with pytest.raises(InputError, match="no punctuation"):
        sentence_index(np.array(["once", "upon", "a", "time"]))
