import numpy as np
import pytest

from featstore.errors import InputError
from featstore.evaluate.encoding.split import chronological_split, contiguous_folds, story_folds
from tests.evaluate.conftest import gapped_kfold


def test_chronological_split_by_hand():
    # 37 TRs, 4 trimmed each side -> TRs 4..32 (29); test = ceil(0.2 * 29) = 6 -> 27..32;
    # gap 2 drops 25, 26 -> train 4..24.
    train, test = chronological_split(37, trim=4, test_frac=0.2, gap=2)
    np.testing.assert_array_equal(test, np.arange(27, 33))
    np.testing.assert_array_equal(train, np.arange(4, 25))


def test_split_rounds_like_sklearn():
    from sklearn.model_selection import train_test_split

    for n in (29, 30, 1000, 2241):
        train, test = chronological_split(n, trim=0, test_frac=0.2, gap=0)
        ref_train, ref_test = train_test_split(np.arange(n), test_size=0.2, shuffle=False)
        np.testing.assert_array_equal(train, ref_train)
        np.testing.assert_array_equal(test, ref_test)


def test_split_errors_name_the_values():
    with pytest.raises(InputError, match="trim=20 drops all 37 TRs"):
        chronological_split(37, trim=20, test_frac=0.2, gap=0)
    with pytest.raises(InputError, match="gap=30"):
        chronological_split(37, trim=0, test_frac=0.2, gap=30)


def test_contiguous_folds_by_hand():
    folds = contiguous_folds(11, 3, gap=1)
    # blocks of 4, 4, 3; one sample dropped on each side of the validation block
    expected = [
        ([5, 6, 7, 8, 9, 10], [0, 1, 2, 3]),
        ([0, 1, 2, 9, 10], [4, 5, 6, 7]),
        ([0, 1, 2, 3, 4, 5, 6], [8, 9, 10]),
    ]
    for (train, val), (ref_train, ref_val) in zip(folds, expected, strict=True):
        np.testing.assert_array_equal(train, ref_train)
        np.testing.assert_array_equal(val, ref_val)


@pytest.mark.parametrize(("n", "k", "gap"), [(23, 5, 0), (22, 5, 1), (40, 3, 4), (17, 2, 0)])
def test_contiguous_folds_match_sklearn_kfold_with_gap(n, k, gap):
    for (train, val), (ref_train, ref_val) in zip(
        contiguous_folds(n, k, gap), gapped_kfold(n, k, gap), strict=True
    ):
        np.testing.assert_array_equal(train, ref_train)
        np.testing.assert_array_equal(val, ref_val)


def test_folds_errors_name_the_values():
    with pytest.raises(InputError, match="cv=5 folds of 9 train TRs"):
        contiguous_folds(9, 5)
    with pytest.raises(InputError, match="cv=2 with gap=5"):
        contiguous_folds(6, 2, gap=5)


def test_story_folds_leave_one_story_out_or_fall_back_to_contiguous_folds():
    folds = story_folds([3, 2, 4], n_folds=5, gap=7)  # gap and n_folds unused
    assert [val.tolist() for _, val in folds] == [[0, 1, 2], [3, 4], [5, 6, 7, 8]]
    assert [fit.tolist() for fit, _ in folds] == [
        [3, 4, 5, 6, 7, 8],
        [0, 1, 2, 5, 6, 7, 8],
        [0, 1, 2, 3, 4],
    ]
    one = story_folds([11], n_folds=3, gap=1)
    expected = contiguous_folds(11, 3, gap=1)
    assert all(
        np.array_equal(a, c) and np.array_equal(b, d)
        for (a, b), (c, d) in zip(one, expected, strict=True)
    )
