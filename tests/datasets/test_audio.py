import hashlib

import numpy as np
import pytest
import soundfile as sf
import soxr

from featstore.datasets import read_audio
from featstore.errors import InputError


def _dominant_frequency(samples, rate):
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)]


@pytest.mark.parametrize(
    ("rate", "subtype"), [(44_100, "PCM_16"), (48_000, "PCM_24"), (8_000, "FLOAT")]
)
def test_resampling_keeps_frequency_and_length(tmp_path, rate, subtype):
    seconds, freq = 2.0, 437.0
    t = np.arange(int(seconds * rate)) / rate
    path = tmp_path / "sine.wav"
    sf.write(path, 0.5 * np.sin(2 * np.pi * freq * t), rate, subtype=subtype)
    samples, sha256 = read_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) == int(seconds * 16_000)
    assert abs(_dominant_frequency(samples, 16_000) - freq) < 1.0
    # a high-quality resampler keeps the amplitude of an in-band tone
    middle = samples[4_000:-4_000]
    assert np.max(np.abs(middle)) == pytest.approx(0.5, abs=0.01)
    reference = 0.5 * np.sin(2 * np.pi * freq * np.arange(len(samples)) / 16_000)
    assert np.corrcoef(middle, reference[4_000:-4_000])[0, 1] > 0.999
    assert sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("rate", "channels"), [(16_000, 1), (48_000, 2)])
def test_ogg_opus_keeps_length_and_timing(tmp_path, rate, channels):
    # band-limited noise with silence before and after: the cross-correlation has one
    # peak, and Opus's pre-skip must be removed for the peak to sit at lag 0
    rng = np.random.default_rng(5)
    reference = np.zeros(27_000)
    burst = np.fft.rfft(rng.standard_normal(19_000))
    burst[np.fft.rfftfreq(19_000, 1 / 16_000) > 6_000] = 0
    reference[4_000:23_000] = np.fft.irfft(burst, 19_000)
    reference *= 0.5 / np.abs(reference).max()
    signal = soxr.resample(reference, 16_000, rate, "VHQ") if rate != 16_000 else reference
    path = tmp_path / "story.ogg"
    sf.write(path, np.repeat(signal[:, None], channels, axis=1), rate, format="OGG", subtype="OPUS")
    samples, sha256 = read_audio(path)
    assert len(samples) == len(reference)
    lags = np.arange(-160, 161)
    xcorr = [np.dot(np.roll(reference, lag), samples) for lag in lags]
    assert abs(lags[int(np.argmax(xcorr))]) < 16  # under 1 ms
    # a perceptual codec keeps noise only roughly (0.93 at 16 kHz's default bitrate)
    assert np.corrcoef(samples, reference)[0, 1] > 0.9
    assert sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_channels_are_averaged_and_16k_is_kept_exactly(tmp_path):
    rng = np.random.default_rng(0)
    stereo = rng.uniform(-0.5, 0.5, (3_001, 2)).astype("f4")
    path = tmp_path / "st.flac"
    sf.write(path, stereo, 16_000, subtype="PCM_24")
    samples, _ = read_audio(path)
    expected = sf.read(path, dtype="float32")[0].mean(axis=1)
    np.testing.assert_allclose(samples, expected, rtol=0, atol=1e-7)


def test_bad_audio_names_the_file(tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1), "f4"), 16_000)
    with pytest.raises(InputError, match=r"empty\.wav: has no samples"):
        read_audio(empty)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    with pytest.raises(InputError, match=r"junk\.wav: cannot read it as WAV/FLAC/Ogg"):
        read_audio(junk)
    zero_bytes = tmp_path / "zero.flac"
    zero_bytes.write_bytes(b"")
    with pytest.raises(InputError, match=r"zero\.flac: cannot read it"):
        read_audio(zero_bytes)
    with pytest.raises(InputError, match=r"absent\.wav: no such file"):
        read_audio(tmp_path / "absent.wav")
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.0, 0.1, np.nan, 0.2], "f4"), 16_000, subtype="FLOAT")
    with pytest.raises(InputError, match=r"nan.wav: sample 2 \(at 0.000 s\) is NaN"):
        read_audio(nan)
