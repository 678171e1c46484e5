import hashlib

import numpy as np
import pytest
import xarray as xr

from featstore import store as fs
from featstore.datasets import import_dataset, import_features, open_stimulus
from featstore.errors import FeatstoreWarning, GroupExistsError, InputError
from featstore.evaluate.runs.configs import select_layers
from tests.datasets.conftest import N_TR, TR, tree_hash

N_LAYER, DIM = 3, 11


@pytest.fixture
def store(inputs):
    path = inputs["dir"] / "s.zarr"
    import_dataset(path, align=inputs["align"], audio=inputs["audio"], tr=TR)
    assert fs.root_attrs(path)["n_tr"] == N_TR
    return path


def _layers(seed=0, n_tr=N_TR, dim=DIM):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N_LAYER, n_tr, dim))


def _save_layers(folder, hidden):
    paths = []
    for i, layer in enumerate(hidden):
        paths.append(folder / f"layer{i}.npy")
        np.save(paths[-1], layer)
    return paths


def test_one_file_per_layer(store, tmp_path):
    hidden = _layers()
    files = _save_layers(tmp_path, hidden)
    group = import_features(store, name="my-lm", window="ctx200", modality="text", files=files)
    assert group == "features/my-lm/ctx200"
    ds = xr.open_zarr(str(store), group=group, consolidated=False)
    assert ds.hidden.dtype == np.float32 and ds.hidden.chunks == ((1, 1, 1), (N_TR,), (DIM,))
    np.testing.assert_array_equal(ds.hidden.values, hidden.astype(np.float32))
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    assert ds.attrs["model_id"] == "imported:my-lm" and ds.attrs["revision"] == digest
    assert ds.attrs["pooling"] == "imported" and ds.attrs["ctx_words"] == 200
    assert ds.attrs["stimulus_sha256"] == open_stimulus(store).attrs["stimulus_sha256"]
    assert ds.attrs["layers"] == [1, 2, 3]
    (info,) = fs.list_feature_sets(store)
    assert (info.key, info.window, info.modality, info.n_layers, info.dim) == (
        "my-lm",
        "ctx200",
        "text",
        N_LAYER,
        DIM,
    )
    assert fs.validate(store) == []


def test_default_grid_evaluates_every_imported_layer(store, tmp_path):
    # an imported set has no embedding layer: layer n is the n-th file, and auto (which
    # skips 0, the embeddings of extracted sets) takes them all
    files = _save_layers(tmp_path, _layers())
    import_features(store, name="my-lm", window="ctx200", modality="text", files=files)
    (info,) = fs.list_feature_sets(store)
    assert select_layers("auto", info) == [1, 2, 3]
    ds = fs.open_feature_set(store, "my-lm", "ctx200", layers=[1])
    np.testing.assert_array_equal(ds.hidden.values[0], np.load(files[0]).astype("f4"))


def test_a_constant_layer_is_imported_with_a_warning_naming_it(store, tmp_path):
    hidden = _layers()
    hidden[1] = 0.0  # the second file: label 2
    hidden[2, :, 4] = 3.0  # one constant dim leaves the layer usable
    files = _save_layers(tmp_path, hidden)
    with pytest.warns(FeatstoreWarning, match=r"my-lm/ctx5: layer 2 \(of 3\) is constant") as got:
        import_features(store, name="my-lm", window="ctx5", modality="text", files=files)
    assert len(got) == 1
    np.testing.assert_array_equal(fs.open_feature_set(store, "my-lm", "ctx5").hidden[1], 0)


@pytest.mark.parametrize(
    ("layers", "message"),
    [([0, 1], "`layers` names 2 layer"), ([0, 1, 1], "distinct"), ([-1, 0, 1], ">= 0")],
)
def test_bad_layer_labels(store, tmp_path, layers, message):
    files = _save_layers(tmp_path, _layers())
    before = tree_hash(store)
    with pytest.raises(InputError, match=message):
        import_features(store, name="x", window="ctx5", modality="text", files=files, layers=layers)
    assert tree_hash(store) == before


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_one_layer_tr_dim_array(store, tmp_path, suffix):
    hidden = _layers(seed=1).astype(np.float16)
    path = tmp_path / f"all{suffix}"
    np.save(path, hidden) if suffix == ".npy" else np.savez(path, hidden=hidden, other=hidden[0])
    import_features(
        store, name="wav", window="tr6", modality="audio", files=[path], layers=[2, 5, 8]
    )
    ds = fs.open_feature_set(store, "wav", "tr6", layers=[5])
    assert ds.hidden.dtype == np.float16 and ds.attrs["tr_win"] == 6
    np.testing.assert_array_equal(ds.hidden.values[0], hidden[1])
    assert ds.attrs["revision"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_overwrite(store, tmp_path):
    files = _save_layers(tmp_path, _layers())
    import_features(store, name="x", window="tr1", modality="lowlevel", files=files)
    before = tree_hash(store)
    with pytest.raises(GroupExistsError, match="features/x/tr1' already exists"):
        import_features(store, name="x", window="tr1", modality="lowlevel", files=files[:1])
    assert tree_hash(store) == before
    import_features(
        store, name="x", window="tr1", modality="lowlevel", files=files[:1], overwrite=True
    )
    assert fs.open_feature_set(store, "x", "tr1").sizes["layer"] == 1


def _bad_files(tmp_path):
    good = _layers()
    cases = {}
    np.save(tmp_path / "flat.npy", good[0, 0])
    cases["ndim"] = ([tmp_path / "flat.npy"], r"flat\.npy has shape \(11,\); expected \(tr, dim\)")
    np.save(tmp_path / "cube.npy", good)
    np.save(tmp_path / "l0.npy", good[0])
    cases["cube in list"] = (
        [tmp_path / "l0.npy", tmp_path / "cube.npy"],
        r"cube\.npy has shape \(3, 7, 11\)",
    )
    np.save(tmp_path / "short.npy", good[0, :5])
    cases["tr count"] = ([tmp_path / "short.npy"], r"has 5 TRs .* but the store has n_tr=7")
    np.save(tmp_path / "short3.npy", good[:, :6])
    cases["tr count 3d"] = ([tmp_path / "short3.npy"], r"has 6 TRs .*layer, tr, dim.* n_tr=7")
    np.save(tmp_path / "wide.npy", np.zeros((N_TR, DIM + 1)))
    cases["dims"] = (
        [tmp_path / "l0.npy", tmp_path / "wide.npy"],
        r"wide\.npy has dim 12 but .*l0\.npy has dim 11",
    )
    nan = good.copy()
    nan[2, 4, 9] = np.nan
    nan[2, 5, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    cases["nan"] = (
        [tmp_path / "nan.npy"],
        r"nan\.npy layer 2: 2 NaN/inf value\(s\); first at TR 4, dim 9",
    )
    np.save(tmp_path / "text.npy", np.array([["a"] * DIM] * N_TR))
    cases["dtype"] = ([tmp_path / "text.npy"], r"dtype <U1; expected real numbers")
    np.savez(tmp_path / "two.npz", a=good, b=good)
    cases["npz keys"] = ([tmp_path / "two.npz"], r"holds arrays \['a', 'b'\]")
    (tmp_path / "corrupt.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    cases["corrupt"] = ([tmp_path / "corrupt.npy"], r"corrupt\.npy: cannot read it")
    np.savez(tmp_path / "whole.npz", hidden=good)
    whole = (tmp_path / "whole.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    cases["cut npz"] = ([tmp_path / "cut.npz"], r"cut\.npz: cannot read it")
    np.savez(tmp_path / "objects.npz", hidden=np.array([{"a": 1}] * N_TR))
    cases["objects"] = ([tmp_path / "objects.npz"], r"objects\.npz: holds object arrays")
    (tmp_path / "table.csv").write_text("1,2\n")
    cases["suffix"] = ([tmp_path / "table.csv"], r"expected a \.npy or \.npz file")
    cases["missing"] = ([tmp_path / "absent.npy"], "no such file")
    cases["none"] = ([], "no feature files given")
    return cases


def test_bad_files_leave_store_unchanged(store, tmp_path):
    before = tree_hash(store)
    for case, (files, message) in _bad_files(tmp_path).items():
        with pytest.raises(InputError, match=message) as info:
            import_features(store, name="bad", window="ctx5", modality="text", files=files)
        assert "\n" not in str(info.value), case
        assert tree_hash(store) == before, case


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "../evil"}, "invalid feature key '../evil'"),
        ({"window": "200"}, "invalid window '200'"),
        ({"modality": "video"}, "modality='video'"),
        (
            {"modality": "audio"},
            "window 'ctx5' does not fit modality 'audio', whose windows are trN",
        ),
        ({"window": "tr6"}, "window 'tr6' does not fit modality 'text', whose windows are ctxN"),
    ],
)
def test_bad_names(store, tmp_path, kwargs, message):
    files = _save_layers(tmp_path, _layers())
    args = {"name": "ok", "window": "ctx5", "modality": "text", "files": files, **kwargs}
    before = tree_hash(store)
    with pytest.raises(InputError, match=message):
        import_features(store, **args)
    assert tree_hash(store) == before


def test_needs_a_stimulus(empty_store, tmp_path):
    files = _save_layers(tmp_path, _layers(n_tr=37))
    with pytest.raises(InputError, match="no complete stimulus group"):
        import_features(empty_store, name="x", window="tr1", modality="audio", files=files)


def test_an_incomplete_imported_set_says_to_re_import_it(store, tmp_path):
    from featstore.errors import IncompleteGroupError
    from featstore.evaluate.runs.configs import StoreCatalog

    files = _save_layers(tmp_path, _layers())
    import_features(store, name="my-lm", window="ctx200", modality="text", files=files)
    fs.update_group_attrs(store, "features/my-lm/ctx200", {"complete": False})  # killed
    with pytest.raises(IncompleteGroupError, match=r"its import was interrupted") as error:
        StoreCatalog(store).info("my-lm", "ctx200")
    assert "re-import it (`featstore features import ... --overwrite`)" in str(error.value)
    assert "extraction" not in str(error.value)
    # what the message says works
    import_features(
        store, name="my-lm", window="ctx200", modality="text", files=files, overwrite=True
    )
    assert StoreCatalog(store).info("my-lm", "ctx200").complete
