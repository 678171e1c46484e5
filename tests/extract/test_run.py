import json

import pytest

from featstore.errors import InputError
from featstore.extract.common import RunOptions
from featstore.extract.registry import resolve_model
from featstore.extract.run import extract, with_weights


def _model_dir(path, model_type):
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": model_type, "encoder_layers": 2}))
    return path


def test_weights_keep_the_alias_key(tmp_path):
    spec = with_weights(resolve_model("whisper-base"), _model_dir(tmp_path / "d01c30", "whisper"))
    assert spec.key == "openai--whisper-base" and spec.alias == "whisper-base"
    assert spec.model_id == str(tmp_path / "d01c30") and spec.local_files_only


@pytest.mark.parametrize(
    ("model", "model_type", "message"),
    [
        ("whisper-base", "wavlm", "holds a wavlm model, but whisper-base is whisper"),
        ("spectral", "whisper", "has no weights"),
    ],
)
def test_weights_mismatch(tmp_path, model, model_type, message):
    with pytest.raises(InputError, match=message):
        with_weights(resolve_model(model), _model_dir(tmp_path / "m", model_type))


def test_weights_need_a_model_directory(tmp_path, empty_store):
    with pytest.raises(InputError, match=r"no config\.json there"):
        extract(empty_store, "wavlm", tr_wins=[1], weights=tmp_path)


def test_run_options_split_from_the_rest_none_meaning_the_default():
    run, rest = RunOptions.split(
        {"batch_size": 3, "precision": None, "threads": 2, "pad_to_30s": False, "transcript": 7}
    )
    assert run == RunOptions(batch_size=3, threads=2)
    assert run.precision == "float32" and run.dtype == "float32" and not run.overwrite
    assert rest == {"pad_to_30s": False, "transcript": 7}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 0}, "batch_size=0: expected at least 1"),
        ({"dtype": "int8"}, "dtype='int8': expected one of"),
        ({"precision": "float8"}, "precision='float8': expected one of"),
        ({"precision": "float16", "device": "cpu"}, "precision=float16 needs a GPU"),
    ],
)
def test_run_options_refuse_bad_values_when_made(options, message):
    with pytest.raises(InputError, match=message):
        RunOptions(**options)
