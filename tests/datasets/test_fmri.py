import pickle
import re

import numpy as np
import pytest

from featstore.datasets import read_fmri
from featstore.errors import InputError
from tests.datasets.conftest import N_ROI, N_TR, SUBJECTS, bold_arrays


def _pickle(path, obj):
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def _fails(path, message, **kwargs):
    with pytest.raises(InputError) as info:
        read_fmri(path, **kwargs)
    text = str(info.value)
    assert str(path) in text and "\n" not in text
    assert re.search(message, text), text
    return text


def test_npz_npy_dir_and_pickle_agree(tmp_path):
    arrays = bold_arrays()
    np.savez(tmp_path / "bold.npz", **arrays)
    folder = tmp_path / "subjects"
    folder.mkdir()
    for subject, array in arrays.items():
        np.save(folder / f"{subject}.npy", array)
    (folder / "README.txt").write_text("not a subject")
    _pickle(tmp_path / "bold.pkl", arrays)
    expected = np.stack([arrays[s] for s in SUBJECTS]).astype(np.float32)
    for path, kind, kwargs in [
        (tmp_path / "bold.npz", "npz", {}),
        (folder, "npy-dir", {}),
        (tmp_path / "bold.pkl", "pickle", {"allow_pickle": True}),
    ]:
        bold, subjects, source = read_fmri(path, **kwargs)
        assert bold.dtype == np.float32 and bold.shape == (3, N_TR, N_ROI)
        assert subjects == SUBJECTS and source.kind == kind and source.trimmed == {}
        np.testing.assert_array_equal(bold, expected)
        assert len(source.sha256) == 64 and kind in source.describe()


def test_pickle_needs_allow_pickle_and_never_runs_code(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = _pickle(tmp_path / "all_sub", {"s1": Exploit()})  # no extension, like the study's
    text = _fails(path, "is a pickle: unpickling runs code")
    assert "`allow_pickle`" in text
    assert not marker.exists()


def test_pickle_that_is_not_a_dict(tmp_path):
    path = _pickle(tmp_path / "list.pkl", [np.zeros((N_TR, N_ROI))])
    _fails(path, "the pickle holds a list; expected a dict", allow_pickle=True)
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(pickle.dumps({"a": 1})[:-3])
    _fails(broken, "cannot unpickle it", allow_pickle=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_inf_name_subject_tr_roi_and_count(tmp_path, dtype):
    arrays = {name: array.astype(dtype) for name, array in bold_arrays().items()}
    arrays["sub-02"][4, 2] = np.nan
    arrays["sub-02"][5, 0] = np.inf
    np.savez(tmp_path / "nan.npz", **arrays)
    # the value as a user reads it: nan, not np.float32(nan)
    _fails(
        tmp_path / "nan.npz",
        r"subject 'sub-02' has 2 NaN/inf value\(s\) .*first at TR 4, ROI 2 \(value nan\)$",
    )


def test_values_too_large_for_float32(tmp_path):
    arrays = bold_arrays()
    arrays["sub-03"][1, 3] = 1e300
    np.savez(tmp_path / "huge.npz", **arrays)
    _fails(
        tmp_path / "huge.npz", r"subject 'sub-03' has 1 NaN/inf .*TR 1, ROI 3 \(value 1e\+300\)$"
    )


@pytest.mark.parametrize("value", [3e38, -2e16])
def test_finite_values_too_large_for_the_statistics(tmp_path, value):
    arrays = bold_arrays()
    arrays["sub-02"][3, 1] = value
    np.savez(tmp_path / "big.npz", **arrays)
    _fails(
        tmp_path / "big.npz",
        rf"subject 'sub-02' has 1 value\(s\) beyond ±1e\+15; first at TR 3, ROI 1 \(value {re.escape(repr(value))}\)",
    )
    arrays["sub-02"][3, 1] = 1e15  # the bound itself is accepted
    np.savez(tmp_path / "edge.npz", **arrays)
    read_fmri(tmp_path / "edge.npz")


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"a": np.zeros(N_TR)}, r"subject 'a' has shape \(7,\); expected \(TR, ROI\)"),
        ({"a": np.zeros((2, N_TR, N_ROI))}, r"subject 'a' has shape \(2, 7, 5\)"),
        ({"a": np.zeros((0, N_ROI))}, "it is empty"),
        (
            {"a": np.zeros((N_TR, N_ROI)), "b": np.zeros((N_TR, N_ROI + 1))},
            "subject 'b' has 6 ROIs but subject 'a' has 5",
        ),
        (
            {"a": np.zeros((N_TR, N_ROI)), "b": np.zeros((N_TR - 2, N_ROI))},
            "subject 'a' has 7 TRs but subject 'b' has 5; pass `trim_to_shortest`",
        ),
        (
            {"a": np.array([["x"] * N_ROI] * N_TR)},
            "subject 'a' has dtype <U1; expected real numbers",
        ),
        ({}, "holds no subjects"),
    ],
)
def test_bad_shapes(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    _fails(tmp_path / "bad.npz", message)


def test_trim_to_shortest_keeps_first_trs(tmp_path):
    arrays = bold_arrays()
    arrays["sub-02"] = arrays["sub-02"][:5]
    np.savez(tmp_path / "uneven.npz", **arrays)
    bold, _, source = read_fmri(tmp_path / "uneven.npz", trim_to_shortest=True)
    assert bold.shape == (3, 5, N_ROI)
    np.testing.assert_array_equal(bold[0], arrays["sub-01"][:5].astype(np.float32))
    assert source.trimmed == {"sub-01": 2, "sub-03": 2}
    assert source.lengths == {"sub-01": 7, "sub-02": 5, "sub-03": 7}


def test_duplicated_subjects(tmp_path):
    path = _pickle(tmp_path / "dup.pkl", {1: np.zeros((N_TR, N_ROI)), "1": np.ones((N_TR, N_ROI))})
    _fails(path, "subject '1' appears more than once", allow_pickle=True)
    folder = tmp_path / "dir"
    folder.mkdir()
    np.save(folder / "sub-01.npy", np.zeros((N_TR, N_ROI)))
    np.save(folder / "other.npy", np.zeros((N_TR, N_ROI)))
    (folder / "other.npy").rename(folder / "sub-01.NPY")
    _fails(folder, "subject 'sub-01' appears more than once")


def test_unreadable_and_foreign_files(tmp_path):
    np.savez(tmp_path / "obj.npz", a=np.array([None, 1], dtype=object))
    _fails(tmp_path / "obj.npz", "holds object arrays")
    np.save(tmp_path / "one.npy", np.zeros((3, N_TR, N_ROI)))
    _fails(tmp_path / "one.npy", "is a single .npy array")
    (tmp_path / "text.npz").write_text("hello")
    _fails(tmp_path / "text.npz", "not an .npz archive nor a pickle")
    (tmp_path / "empty.npz").write_bytes(b"")
    _fails(tmp_path / "empty.npz", "the file is empty")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "obj.npz").read_bytes()[:40])
    _fails(tmp_path / "cut.npz", "cannot read it as .npz")
    (tmp_path / "none").mkdir()
    _fails(tmp_path / "none", "directory has no .npy files")
    _fails(tmp_path / "absent.npz", "no such file")
    bad_npy = tmp_path / "badnpy"
    bad_npy.mkdir()
    (bad_npy / "s1.npy").write_bytes(b"\x93NUMPY garbage")
    _fails(bad_npy / "s1.npy", "is a single .npy array")
    _fails(bad_npy, "cannot read it as .npy")
