import json

import pytest

from featstore.errors import InputError
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
