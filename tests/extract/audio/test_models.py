"""Speech, Whisper and CLAP encoders on tiny random models: layers, pooling, batching."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from featstore import store as fs
from featstore.errors import InputError, ModelError
from featstore.extract.audio import load_audio_encoder
from featstore.extract.clap import load_clap_encoder, resample
from featstore.extract.registry import resolve_model
from featstore.extract.run import extract
from featstore.extract.whisper import (
    covered_frames,
    load_whisper_encoder,
    unpadded_hidden_states,
)

from .conftest import SR

LOADERS = {
    "wav2vec2": load_audio_encoder,
    "wavlm": load_audio_encoder,
    "hubert": load_audio_encoder,
    "whisper": load_whisper_encoder,
    "clap": load_clap_encoder,
    "clap-fused": load_clap_encoder,
}
LAYERS = {"wav2vec2": 3, "wavlm": 4, "hubert": 3, "whisper": 3, "clap": 4, "clap-fused": 4}
DIMS = {"wav2vec2": 12, "wavlm": 16, "hubert": 20, "whisper": 24, "clap": 16, "clap-fused": 16}


def windows(n_windows: int, n_samples: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = (0.2 * rng.standard_normal((n_windows, n_samples))).astype(np.float32)
    out[0, : n_samples // 2] = 0  # a window that starts before the story: real zeros
    return out


@pytest.mark.parametrize("family", list(LOADERS))
def test_batch_equals_one_at_a_time(tiny_models, family):
    encoder = LOADERS[family](resolve_model(tiny_models[family]), device="cpu")
    batch = windows(5, 7211)
    pooled = encoder.encode(batch)
    assert pooled.shape == (LAYERS[family], 5, DIMS[family])
    assert len(encoder.layer_names) == LAYERS[family] and encoder.dim == DIMS[family]
    single = np.concatenate([encoder.encode(batch[i : i + 1]) for i in range(5)], axis=1)
    np.testing.assert_allclose(pooled, single, rtol=1e-5, atol=1e-5)
    assert np.isfinite(pooled).all() and np.ptp(pooled, axis=1).max() > 0


def test_speech_pooling_counts_the_valid_frames(tiny_models):
    from transformers import Wav2Vec2FeatureExtractor, WavLMModel

    path = tiny_models["wavlm"]
    encoder = load_audio_encoder(resolve_model(path), device="cpu")
    batch = windows(3, 5003)
    model = WavLMModel.from_pretrained(path).eval()
    inputs = Wav2Vec2FeatureExtractor.from_pretrained(path)(
        list(batch), sampling_rate=SR, return_tensors="pt"
    )
    with torch.inference_mode():
        hidden = model(inputs["input_values"], output_hidden_states=True).hidden_states
    # conv strides 5·4, kernels 10, 8: (5003 − 10)//5 + 1 = 999, (999 − 8)//4 + 1 = 248
    assert hidden[0].shape[1] == 248
    reference = np.stack([h.mean(dim=1).numpy() for h in hidden])
    np.testing.assert_allclose(encoder.encode(batch), reference, rtol=1e-5, atol=1e-6)


def test_whisper_frames_cover_the_audio_only():
    assert covered_frames(1, 320, 1500) == 1
    assert covered_frames(320, 320, 1500) == 1
    assert covered_frames(321, 320, 1500) == 2
    assert covered_frames(8000, 320, 1500) == 25  # 0.5 s ≈ 50 frames per second
    assert covered_frames(480_000, 320, 1500) == 1500
    assert covered_frames(10**7, 320, 1500) == 1500


def test_whisper_pools_exactly_the_real_audio_frames(tiny_models):
    from transformers import WhisperFeatureExtractor, WhisperModel

    path = tiny_models["whisper"]
    encoder = load_whisper_encoder(resolve_model(path), device="cpu")
    assert encoder.settings["samples_per_frame"] == 320
    assert encoder.max_window_s == 30.0
    batch = windows(2, 12_345)
    n_real = math.ceil(12_345 / 320)  # 39 encoder frames cover the audio
    extractor = WhisperFeatureExtractor.from_pretrained(path)
    features = extractor(list(batch), sampling_rate=SR, return_tensors="pt")["input_features"]
    assert features.shape[-1] == 3000  # always 30 s of log-mel
    model = WhisperModel.from_pretrained(path).eval()
    with torch.inference_mode():
        out = model.encoder(features, output_hidden_states=True)
    hidden = out.hidden_states
    assert len(hidden) == 3 and hidden[0].shape[1] == 1500
    torch.testing.assert_close(hidden[-1], out.last_hidden_state)
    by_hand = np.stack([h[:, :n_real].mean(dim=1).numpy() for h in hidden])
    pooled = encoder.encode(batch)
    np.testing.assert_allclose(pooled, by_hand, rtol=1e-5, atol=1e-6)
    everything = np.stack([h.mean(dim=1).numpy() for h in hidden])
    assert np.abs(pooled - everything).max() > 1e-2  # the padding would have changed it


def test_whisper_unpadded_pass_is_the_encoder_on_the_window_frames(tiny_models):
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    path = tiny_models["whisper"]
    batch = windows(2, 12_345)
    n_real = math.ceil(12_345 / 320)
    mel = WhisperFeatureExtractor.from_pretrained(path)(
        list(batch), sampling_rate=SR, return_tensors="pt"
    )["input_features"]
    encoder = WhisperModel.from_pretrained(path).eval().encoder
    with torch.inference_mode():
        # on all 1500 frames, the layer-by-layer pass is transformers' own
        full = encoder(mel, output_hidden_states=True).hidden_states
        for ours, theirs in zip(unpadded_hidden_states(encoder, mel, 1500), full, strict=True):
            torch.testing.assert_close(ours, theirs)
        # on the window's frames: transformers' encoder built for that many positions
        config = WhisperConfig.from_pretrained(path, max_source_positions=n_real)
        short = WhisperEncoder(config).eval()
        state = {k: v[:n_real] if k == "embed_positions.weight" else v
                 for k, v in encoder.state_dict().items()}  # fmt: skip
        short.load_state_dict(state)
        reference = short(mel[..., : 2 * n_real], output_hidden_states=True).hidden_states
    expected = np.stack([h.mean(dim=1).numpy() for h in reference])
    fast = load_whisper_encoder(resolve_model(path), device="cpu", pad_to_30s=False)
    assert fast.settings["padded_to_30s"] is False
    pooled = fast.encode(batch)
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)
    padded = load_whisper_encoder(resolve_model(path), device="cpu").encode(batch)
    assert np.abs(pooled - padded).max() > 1e-4  # attention no longer sees the padding


def test_clap_unfused_path_and_layers(tiny_models):
    from transformers import ClapAudioModelWithProjection, ClapFeatureExtractor

    path = tiny_models["clap"]
    batch = windows(3, 8000)
    upsampled = resample(batch, SR, 48_000)
    assert upsampled.shape == (3, 24_000)
    extractor = ClapFeatureExtractor.from_pretrained(path)
    # the extractor's default (fusion) makes a 4-channel input the unfused model cannot take
    default = extractor(list(upsampled), sampling_rate=48_000, return_tensors="pt")
    assert default["input_features"].shape[1] == 4
    encoder = load_clap_encoder(resolve_model(path), device="cpu")
    assert encoder.layer_names == ["patch_embed", "stage1", "stage2", "projection"]
    assert encoder.layer_dims == [8, 8, 16, 14] and encoder.max_window_s == 10.0
    pooled = encoder.encode(batch)
    assert pooled.shape == (4, 3, 16)
    for layer, width in enumerate(encoder.layer_dims):
        assert not pooled[layer, :, width:].any() and pooled[layer, :, :width].any()
    inputs = extractor(
        list(upsampled),
        sampling_rate=48_000,
        truncation="rand_trunc",
        padding="repeatpad",
        return_tensors="pt",
    )
    assert inputs["input_features"].shape == (3, 1, 1001, 64)
    model = ClapAudioModelWithProjection.from_pretrained(path).eval()
    with torch.inference_mode():
        out = model(
            **inputs, output_hidden_states=True, output_hidden_states_before_downsampling=True
        )
    np.testing.assert_allclose(pooled[-1, :, :14], out.audio_embeds.numpy(), rtol=1e-5, atol=1e-6)
    stage2 = out.hidden_states[2].mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(pooled[2], stage2, rtol=1e-5, atol=1e-6)


def test_extract_end_to_end_batched_equals_single(tiny_models, make_store):
    store = make_store()
    other = make_store(name="single")
    groups = extract(store, tiny_models["hubert"], tr_wins=[1, 3], batch_size=4, threads=1)
    assert groups == ["features/hubert/tr1", "features/hubert/tr3"]
    extract(other, tiny_models["hubert"], tr_wins=[3], batch_size=1)
    batched = fs.open_feature_set(store, "hubert", "tr3")
    single = fs.open_feature_set(other, "hubert", "tr3")
    np.testing.assert_allclose(
        batched["hidden"].values, single["hidden"].values, rtol=1e-5, atol=1e-5
    )
    attrs = batched.attrs
    assert attrs["modality"] == "audio" and attrs["revision"] == "local"
    assert attrs["layer_names"] == ["embeddings", "block1", "block2"]
    assert attrs["settings"]["model_type"] == "hubert"


@pytest.mark.parametrize(("family", "tr_win", "limit"), [("whisper", 61, 30), ("clap", 21, 10)])
def test_windows_beyond_the_model_input_are_refused(tiny_models, make_store, family, tr_win, limit):
    store = make_store(n_tr=tr_win)  # a story as long as the window: the model's limit is hit
    with pytest.raises(InputError, match=f"takes at most {limit} s"):
        extract(store, tiny_models[family], tr_wins=[tr_win])
    assert not fs.group_exists(store, f"features/{family}/tr{tr_win}")


def test_clap_and_whisper_store_their_layer_attrs(tiny_models, make_store):
    store = make_store()
    extract(store, tiny_models["clap"], tr_wins=[2], batch_size=8)
    extract(store, tiny_models["whisper"], tr_wins=[2], batch_size=8)
    clap = fs.open_feature_set(store, "clap", "tr2")
    assert clap.attrs["layer_dims"] == [8, 8, 16, 14] and clap.attrs["modality"] == "multimodal"
    assert clap["hidden"].shape == (4, 20, 16)
    assert clap.attrs["settings"]["truncation"] == "rand_trunc"
    whisper = fs.open_feature_set(store, "whisper", "tr2")
    assert whisper["hidden"].shape == (3, 20, 24)
    assert "never the 30 s padding" in whisper.attrs["pooling"]
    assert whisper.attrs["settings"]["padded_to_30s"] is True
    extract(store, tiny_models["whisper"], tr_wins=[3], pad_to_30s=False)
    assert fs.open_feature_set(store, "whisper", "tr3").attrs["settings"]["padded_to_30s"] is False
    with pytest.raises(InputError, match="only Whisper pads its input"):
        extract(store, tiny_models["clap"], tr_wins=[3], pad_to_30s=False)


def test_unloadable_model_is_one_model_error():
    with pytest.raises(ModelError, match="cannot load model 'nobody/wav2vec2-missing'"):
        load_audio_encoder(resolve_model("nobody/wav2vec2-missing"), device="cpu")


def test_whisper_base_alias_finds_the_locally_converted_copy(
    tiny_models, make_store, tmp_path, monkeypatch
):
    """Offline, ``--model whisper-base`` uses the copy featstore converted into its cache
    (as the demo does), says which directory, and keeps the alias's feature key."""
    import shutil

    from typer.testing import CliRunner

    from featstore.cli.main import app
    from featstore.extract.ct2_whisper import CONVERSION_FILE

    monkeypatch.setenv("FEATSTORE_CACHE", str(tmp_path / "cache"))
    assert resolve_model("whisper-base").model_id == "openai/whisper-base"  # none converted
    base = tmp_path / "cache" / "whisper-base-ct2-hf"
    unfinished = base / "0000aaaa"  # a conversion killed before its record was written
    shutil.copytree(tiny_models["whisper"], unfinished)
    assert resolve_model("whisper-base").model_id == "openai/whisper-base"
    local = base / "1234abcd"
    shutil.copytree(tiny_models["whisper"], local)
    (local / CONVERSION_FILE).write_text("{}")

    spec = resolve_model("whisper-base")
    assert spec.model_id == str(local) and spec.local_files_only
    assert spec.key == "openai--whisper-base" and spec.alias == "whisper-base"
    assert resolve_model("openai/whisper-base").model_id == "openai/whisper-base"

    store = make_store()
    args = ["extract", "--model", "whisper-base", "--tr-win", "2", "--store", store, "--quiet"]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert f"note: whisper-base: using the copy featstore converted in {local}" in result.stderr
    ds = fs.open_feature_set(store, "openai--whisper-base", "tr2")
    assert ds.attrs["model_id"] == str(local) and ds["hidden"].shape == (3, 20, 24)
