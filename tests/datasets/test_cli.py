"""``featstore dataset import`` and ``featstore features import`` through the real CLI app."""

import pickle

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from featstore import store as fs
from featstore.cli.main import app
from tests.datasets.conftest import ALIGN_ROWS, TR, bold_arrays, csv_text, tree_hash


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _base(inputs, store):
    return [
        "dataset",
        "import",
        "--align",
        inputs["align"],
        "--audio",
        inputs["audio"],
        "--tr",
        TR,
        "--store",
        store,
    ]


def _assert_one_line_error(result, *culprits):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for culprit in culprits:
        assert str(culprit) in lines[0], lines[0]


def test_dataset_import_prints_report(inputs):
    store = inputs["dir"] / "story.zarr"
    result = _invoke(*_base(inputs, store), "--fmri", inputs["fmri"], "--dataset", "tiny")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "words      11  (1 timestamps back-filled, 1 missing words)" in out
    assert "10.00 s at 16 kHz" in out and "n_tr=7 of 1.5 s" in out
    assert "3 subjects (sub-01, sub-02, sub-03); 5 ROIs (custom)" in out
    assert "fMRI 7 TRs vs audio 7 TRs: difference +0" in out
    assert fs.root_attrs(store)["dataset"] == "tiny" and fs.validate(store) == []


def test_pickle_with_allow_pickle(inputs):
    pkl = inputs["dir"] / "all_sub.pkl"
    pkl.write_bytes(pickle.dumps(bold_arrays()))
    store = inputs["dir"] / "p.zarr"
    result = _invoke(*_base(inputs, store), "--fmri", pkl, "--allow-pickle")
    assert result.exit_code == 0, result.output
    assert "pickle" in fs.group_attrs(store, "fmri")["source"]


def _bad_cases(inputs):
    d = inputs["dir"]
    (d / "back.csv").write_text(csv_text([*ALIGN_ROWS, ("b", "b", "1.0", "1.2")]))
    (d / "junk.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    nan = bold_arrays()
    nan["sub-03"][6, 4] = np.nan
    np.savez(d / "nan.npz", **nan)
    long = bold_arrays(n_tr=11)
    np.savez(d / "long.npz", **long)
    uneven = bold_arrays()
    uneven["sub-02"] = uneven["sub-02"][:6]
    np.savez(d / "uneven.npz", **uneven)
    (d / "all_sub.pkl").write_bytes(pickle.dumps(bold_arrays()))
    (d / "rois.txt").write_text("a\nb\n")
    fmri = ["--fmri", inputs["fmri"]]
    return {
        "non-monotonic": (["--align", d / "back.csv"], ["back.csv", "line 13"]),
        "corrupt audio": (["--audio", d / "junk.wav"], ["junk.wav"]),
        "nan": (["--fmri", d / "nan.npz"], ["nan.npz", "sub-03", "TR 6, ROI 4"]),
        "tr mismatch": (["--fmri", d / "long.npz"], ["long.npz", "has 11 TRs", "spans 7 TRs"]),
        "lengths": (["--fmri", d / "uneven.npz"], ["sub-02", "--trim-to-shortest"]),
        "pickle": (["--fmri", d / "all_sub.pkl"], ["all_sub.pkl", "--allow-pickle"]),
        "roi names": ([*fmri, "--roi-names", d / "rois.txt"], ["rois.txt", "2 names", "5 ROIs"]),
        "tr assign": (["--tr-assign", "round"], ["--tr-assign 'round'"]),
        "tr": (["--tr", "0"], ["--tr 0"]),
        "stim onset": (["--stim-onset", "-2"], ["--stim-onset -2"]),
        "missing align": (["--align", d / "absent.csv"], ["absent.csv", "no such file"]),
    }


def test_bad_input_exits_2_with_one_line_and_store_unchanged(inputs):
    store = inputs["dir"] / "s.zarr"
    assert _invoke(*_base(inputs, store)).exit_code == 0
    before = tree_hash(store)
    fresh = inputs["dir"] / "fresh.zarr"
    for case, (extra, culprits) in _bad_cases(inputs).items():
        result = _invoke(*_base(inputs, store), *extra, "--overwrite")
        _assert_one_line_error(result, *culprits)
        assert tree_hash(store) == before, case
        result = _invoke(*_base(inputs, fresh), *extra)
        _assert_one_line_error(result, *culprits)
        assert not fresh.exists(), case
    leftovers = [p.name for p in inputs["dir"].iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_existing_store_needs_overwrite(inputs):
    store = inputs["dir"] / "s.zarr"
    assert _invoke(*_base(inputs, store)).exit_code == 0
    before = tree_hash(store)
    _assert_one_line_error(_invoke(*_base(inputs, store)), store, "--overwrite")
    assert tree_hash(store) == before
    result = _invoke(*_base(inputs, store), "--fmri", inputs["fmri"], "--overwrite")
    assert result.exit_code == 0 and fs.group_exists(store, "fmri")


def test_overwrite_refuses_a_store_of_a_newer_schema(inputs):
    store = inputs["dir"] / "s.zarr"
    assert _invoke(*_base(inputs, store), "--fmri", inputs["fmri"]).exit_code == 0
    root = zarr.open_group(str(store), mode="r+")
    root.attrs["featstore_schema"] = 3  # written by a newer featstore
    before = tree_hash(store)
    result = _invoke(*_base(inputs, store), "--overwrite")
    _assert_one_line_error(result, store, "schema version 3", "refusing to replace it")
    assert tree_hash(store) == before
    assert [p.name for p in inputs["dir"].iterdir() if p.name.startswith(".")] == []


def test_features_import(inputs):
    store = inputs["dir"] / "s.zarr"
    assert _invoke(*_base(inputs, store)).exit_code == 0
    rng = np.random.default_rng(0)
    files = []
    for i in range(2):
        files.append(inputs["dir"] / f"layer{i}.npy")
        np.save(files[-1], rng.standard_normal((7, 13)))
    args = [
        "features",
        "import",
        "--store",
        store,
        "--name",
        "mine",
        "--window",
        "tr2",
        "--modality",
        "audio",
    ]
    result = _invoke(*args, *files)
    assert result.exit_code == 0, result.output
    assert "wrote features/mine/tr2 from 2 file(s): layers 1, 2" in result.stdout
    assert fs.open_feature_set(store, "mine", "tr2").hidden.shape == (2, 7, 13)
    named = _invoke(*args, "--name", "named", "--layers", "0,6", *files)
    assert named.exit_code == 0 and "layers 0, 6" in named.stdout, named.output
    assert fs.open_feature_set(store, "named", "tr2").attrs["layers"] == [0, 6]
    _assert_one_line_error(_invoke(*args, "--name", "n2", "--layers", "auto", *files), "--layers")
    np.save(inputs["dir"] / "zeros.npy", np.zeros((7, 13)))
    zeros = _invoke(*args, "--name", "zeros", files[0], inputs["dir"] / "zeros.npy")
    assert zeros.exit_code == 0 and "wrote features/zeros/tr2" in zeros.stdout, zeros.output
    warning = "warning: feature set features/zeros/tr2: layer 2 (of 2) is constant over all 7 TRs"
    (line,) = zeros.stderr.strip().splitlines()
    assert line.startswith(warning) and "Traceback" not in zeros.output
    before = tree_hash(store)
    _assert_one_line_error(_invoke(*args, *files), "features/mine/tr2", "--overwrite")
    np.save(inputs["dir"] / "short.npy", np.zeros((5, 13)))
    _assert_one_line_error(
        _invoke(*args, "--overwrite", inputs["dir"] / "short.npy"), "short.npy", "5 TRs", "n_tr=7"
    )
    bad_window = [
        "features",
        "import",
        "--store",
        store,
        "--name",
        "m",
        "--window",
        "6",
        "--modality",
        "audio",
        files[0],
    ]
    _assert_one_line_error(_invoke(*bad_window), "invalid window '6'")
    assert tree_hash(store) == before


@pytest.mark.parametrize("group", ["dataset", "features"])
def test_help_has_an_example(group):
    result = _invoke(group, "import", "--help")
    assert result.exit_code == 0 and f"featstore {group} import" in result.stdout


@pytest.mark.parametrize("overwrite", [False, True])
def test_ctrl_c_during_import_says_nothing_was_written(inputs, monkeypatch, overwrite):
    """Import is all or nothing: Ctrl-C leaves no store (or the old one) and no staging,
    and the message says to rerun the import, not that it resumes."""
    from featstore.datasets import importer

    store = inputs["dir"] / "story.zarr"
    if overwrite:
        assert _invoke(*_base(inputs, store), "--dataset", "old").exit_code == 0
    before = tree_hash(store)  # {} where there is no store
    real_write_group = importer.write_group

    def interrupted_write(path, group, *args, **kwargs):
        real_write_group(path, group, *args, **kwargs)
        if group == "fmri":  # the staged store is complete: only the rename is left
            raise KeyboardInterrupt

    monkeypatch.setattr(importer, "write_group", interrupted_write)
    args = ["--overwrite"] if overwrite else []
    result = _invoke(*_base(inputs, store), "--fmri", inputs["fmri"], *args)
    assert result.exit_code == 130, result.output
    assert result.stderr.strip().splitlines() == [
        "interrupted; nothing was written (an import is all or nothing): rerun the import"
    ]
    assert tree_hash(store) == before
    assert [p.name for p in inputs["dir"].iterdir() if p.name.startswith(".")] == []
