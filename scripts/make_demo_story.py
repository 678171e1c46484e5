"""Regenerate featstore's bundled demo story: speech and exact word timings from espeak-ng.

The story text below was written for featstore and is dedicated to the public domain.
The speech is synthesized by libespeak-ng (called through ctypes); every word's onset is
the sample at which the synthesizer emitted that word's WORD event, and its offset is the
next word's onset or, when the synthesizer inserted a pause after the word, the start of
that pause phoneme. No timing is estimated from the audio.

The audio is written as Ogg Opus at 16 kHz (48 kbit/s target, ~1.5 MB for five minutes,
where 16-bit FLAC would need 5.4 MB). Opus delays its output by a pre-skip that the
decoder removes; the script decodes the file it wrote and refuses it unless the length
is exact and cross-correlation with the float source finds an offset under 1 ms, over
the whole story and in every 30 s segment. The Ogg stream serial number, random in
libsndfile, is set to a constant so that reruns give the same bytes.

Needs espeak-ng at run time (Debian: ``apt-get install espeak-ng``); the package ships
only the outputs. Run from the repository root::

    python scripts/make_demo_story.py            # writes featstore/datasets/demo_data/
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import ctypes.util
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

STORY = """\
Every morning, before the fishing boats left the harbor, Elena climbed the spiral stairs \
inside the old lighthouse to polish the great glass lens. Her father had kept the light for \
thirty years, and now that his knees were stiff and his eyes were tired, the work belonged \
to her.
One windy autumn evening, a small gray cat appeared among the rocks below the tower. It was \
soaked and shivering, and it carried something bright in its mouth. Elena wrapped the animal \
in a wool blanket and set it beside the stove. When the cat finally opened its jaws, a \
silver key dropped onto the wooden floor.
Nobody down in town recognized the key. The baker shrugged, the schoolteacher frowned, and \
the fishermen laughed and said the sea was full of strange gifts. But her father turned the \
key slowly in his rough hands and grew very quiet.
That night he told her about a wooden chest his grandmother had buried beneath the garden \
wall during a terrible storm, long before the lighthouse had electricity. The family had \
searched for it many times, but the map was lost, and the key had vanished with it.
At dawn they carried shovels to the garden. The ground was cold and heavy with clay, and the \
wind pulled at their coats. After two hours of digging, Elena struck something hard. \
Together they lifted a small chest, its hinges green with age.
Inside, wrapped in oilcloth, they found letters, a faded photograph, and a brass compass \
whose needle still trembled toward the north. Her father read the first letter aloud, and \
his voice broke halfway through.
The cat stayed with them after that. Elena named it Harbor, and every evening it followed \
her up the stairs, watching the beam sweep slowly across the dark water.
The letters were harder to read than anyone expected. The ink had faded to the color of weak \
tea, and the handwriting leaned like grass in a gale. Elena spread the pages across the \
kitchen table and copied each line into a notebook, while the kettle whistled and Harbor \
slept on a chair.
Slowly a story emerged. Her great grandmother, a young widow called Rosa, had rowed out \
alone one winter night to rescue sailors from a cargo ship that had struck the reef. Seven \
men survived. In return, the captain gave her his compass and promised that his family would \
never forget the village. But the harbor master accused Rosa of stealing the cargo, so she \
hid everything inside the chest, afraid that someone would take the proof away.
The last letter held a list of names and an address in a northern port. Her father suggested \
that they write to it, although a whole century had passed. Elena posted the envelope on \
Monday and tried to forget about it.
Winter arrived early that year. Storms rolled across the sea, one after another, and the \
ferry stopped running for nine days. During the worst night, a gust tore the power line from \
its poles, and the whole coast went black. The electric lamp high up inside the tower \
flickered and died.
Elena remembered the old kerosene lantern that hung inside the storeroom. She carried it up \
the stairs, with Harbor racing ahead of her, and set it inside the lens. Her hands shook as \
she struck a match. The flame caught, the glass gathered its weak glow into a single beam, \
and the light reached out across the waves again.
Somewhere beyond the reef, a fishing boat with a broken engine was drifting toward the \
rocks. The crew saw the beam, understood where they were, and dropped anchor just in time. \
At sunrise the lifeboat towed them home, and half the town gathered along the pier to cheer.
Two weeks later, a reply arrived from that northern port. It was written by an elderly woman \
named Margaret, whose grandfather, the youngest sailor aboard the cargo ship, survived that \
night. Her family had told the story of Rosa for generations, she wrote, but nobody had \
known her surname or her village. She asked whether she could visit when spring came.
Margaret arrived in April with a basket of apples and a small painting showing the ship. She \
and Elena's father sat by the stove for hours, comparing letters, laughing and sometimes \
crying. Before she left, she placed the painting beside the brass compass, above the \
fireplace.
That summer, the town hung a wooden sign beside the harbor gate. It carried Rosa's name, the \
year when the ship sank, and a single line from her letter: the sea takes, but the light \
gives back.
Elena still climbs the spiral stairs every morning. The lighthouse has a new electric lamp \
now, and a spare generator hums inside the shed, but the kerosene lantern waits on a shelf, \
polished and full. And every evening, when the beam begins to turn, Harbor sits at the \
window and watches the boats come safely home.
"""

VOICE = "en-us"
RATE_WPM = 150
OUT_RATE = 16_000
PEAK = 0.89
OPUS_BITRATE = 48_000  # bit/s; ~40 on average for this speech (VBR)
# libsndfile maps the compression level q to an Opus bitrate of (1 - q) * 250 000 + 6000 bit/s
OPUS_LEVEL = 1.0 - (OPUS_BITRATE - 6000) / 250_000
OGG_SERIAL = 0x66656174  # b"feat"; libsndfile draws a random one per file
MAX_OFFSET_S = 0.001  # the decoded audio must align with the source to better than this
SEGMENT_S = 30.0

# speak_lib.h constants
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
POS_CHARACTER = 1
CHARS_UTF8 = 1
PARAM_RATE = 1
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_PHONEME = 0, 1, 7


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass
class Token:
    """A whitespace-separated token of the story and its character span (0-based)."""

    text: str
    start: int
    end: int

    @property
    def lower(self) -> str:
        # Gentle's word_lower: lower case, punctuation stripped (inner apostrophes kept)
        return re.sub(r"^[^\w']+|[^\w']+$", "", self.text).lower()


def tokenize(text: str) -> list[Token]:
    """Whitespace tokens with their character spans."""
    return [Token(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def synthesize(text: str, voice: str, rate: int) -> tuple[np.ndarray, int, list[tuple]]:
    """Run libespeak-ng synchronously; return int16 audio, its rate and the events.

    Events are ``(type, text_position, sample, phoneme_or_number)``; ``sample`` is the
    synthesizer's own sample index of the event in the output stream.
    """
    path = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    lib = ctypes.CDLL(path)
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    sample_rate = lib.espeak_Initialize(
        AUDIO_OUTPUT_SYNCHRONOUS, 0, None, INITIALIZE_PHONEME_EVENTS
    )
    if sample_rate <= 0:
        raise RuntimeError("espeak_Initialize failed")
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise RuntimeError(f"espeak-ng has no voice {voice!r}")
    lib.espeak_SetParameter(PARAM_RATE, rate, 0)
    chunks: list[bytes] = []
    events: list[tuple] = []

    def on_audio(wav, n_samples, event_list) -> int:
        if n_samples > 0:
            chunks.append(ctypes.string_at(wav, n_samples * 2))
        i = 0
        while event_list[i].type != EVENT_LIST_TERMINATED:
            ev = event_list[i]
            ident = (
                bytes(ev.id.string).rstrip(b"\0").decode()
                if ev.type == EVENT_PHONEME
                else ev.id.number
            )
            events.append((ev.type, ev.text_position, ev.sample, ident))
            i += 1
        return 0

    callback = _Callback(on_audio)
    lib.espeak_SetSynthCallback(callback)
    data = text.encode("utf-8")
    status = lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
    lib.espeak_Terminate()
    if status != 0:
        raise RuntimeError(f"espeak_Synth failed with status {status}")
    audio = np.frombuffer(b"".join(chunks), dtype=np.int16)
    return audio, sample_rate, events


def word_timings(tokens: list[Token], events: list[tuple], n_samples: int) -> list[tuple[int, int]]:
    """(onset, offset) sample indices per token from the synthesizer's events.

    Onset: the token's WORD event. Offset: the first pause phoneme (``_``, ``_:`` …) the
    synthesizer emitted after the token started, or else the next word's onset (or the
    end of the audio for the last word).
    """
    onsets: dict[int, int] = {}
    for kind, text_pos, sample, _ in events:
        if kind != EVENT_WORD:
            continue
        # text_position is 1-based. At clause starts espeak-ng 1.51 also emits a stale
        # copy of the next WORD event carrying an earlier text position: skip it.
        index = next((i for i, t in enumerate(tokens) if t.start < text_pos <= t.end), None)
        if index is None or (onsets and index <= max(onsets)):
            continue
        onsets[index] = sample
    missing = [
        " ".join(t.text for t in tokens[max(i - 1, 0) : i + 1])
        for i in range(len(tokens))
        if i not in onsets
    ]
    if missing:
        # espeak-ng speaks some word pairs ("of the") as one phonetic word with one event;
        # the story avoids them so that every word has its own synthesizer onset
        raise RuntimeError(f"no WORD event for the words {missing}; rephrase the story")
    pauses = sorted(s for kind, _, s, ph in events if kind == EVENT_PHONEME and ph.startswith("_"))
    starts = [onsets[i] for i in range(len(tokens))] + [n_samples]
    timings = []
    for i in range(len(tokens)):
        onset, next_onset = starts[i], starts[i + 1]
        offset = next((p for p in pauses if onset < p < next_onset), next_onset)
        timings.append((onset, offset))
    return timings


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = (crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_OGG_CRC_TABLE = _crc_table()


def ogg_crc(data: bytes) -> int:
    """The Ogg page checksum: CRC-32, polynomial 0x04C11DB7, not reflected, initial 0."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC_TABLE[(crc >> 24) ^ byte]
    return crc


def set_ogg_serial(path: Path, serial: int) -> int:
    """Rewrite the stream serial number of every page of a one-stream Ogg file in place.

    Each page's checksum is verified before and recomputed after the change. Returns the
    number of pages.
    """
    data = bytearray(path.read_bytes())
    pos = pages = 0
    while pos < len(data):
        if data[pos : pos + 4] != b"OggS":
            raise RuntimeError(f"{path}: no Ogg page at byte {pos}")
        n_segments = data[pos + 26]
        size = 27 + n_segments + sum(data[pos + 27 : pos + 27 + n_segments])
        stored = int.from_bytes(data[pos + 22 : pos + 26], "little")
        data[pos + 22 : pos + 26] = bytes(4)
        if ogg_crc(data[pos : pos + size]) != stored:
            raise RuntimeError(f"{path}: bad checksum in the Ogg page at byte {pos}")
        data[pos + 14 : pos + 18] = serial.to_bytes(4, "little")
        data[pos + 22 : pos + 26] = ogg_crc(data[pos : pos + size]).to_bytes(4, "little")
        pos += size
        pages += 1
    path.write_bytes(bytes(data))
    return pages


def lag_samples(source: np.ndarray, decoded: np.ndarray, max_lag: int = 160) -> float:
    """Delay of ``decoded`` relative to ``source`` in samples (sub-sample, parabolic peak).

    Positive: ``decoded[n]`` matches ``source[n - lag]``. The cross-correlation is searched
    within ``max_lag`` samples of zero.
    """
    n = len(source) + len(decoded)
    spectrum = np.fft.rfft(decoded, n) * np.conj(np.fft.rfft(source, n))
    xcorr = np.fft.irfft(spectrum, n)
    lags = np.arange(-max_lag, max_lag + 1)
    values = xcorr[lags % n]
    k = int(np.argmax(values))
    if 0 < k < len(lags) - 1:
        left, mid, right = values[k - 1 : k + 2]
        return float(lags[k] + 0.5 * (left - right) / (left - 2 * mid + right))
    return float(lags[k])


def write_opus(path: Path, samples: np.ndarray, rate: int) -> dict[str, float]:
    """Write Ogg Opus, then decode it and check length and alignment against ``samples``."""
    sf.write(path, samples, rate, format="OGG", subtype="OPUS", compression_level=OPUS_LEVEL)
    pages = set_ogg_serial(path, OGG_SERIAL)
    decoded, decoded_rate = sf.read(path, dtype="float32")
    if decoded_rate != rate or len(decoded) != len(samples):
        raise RuntimeError(
            f"{path}: decodes to {len(decoded)} samples at {decoded_rate} Hz; "
            f"expected {len(samples)} at {rate} Hz"
        )
    segment = int(SEGMENT_S * rate)
    segment_lags = [
        lag_samples(samples[i : i + segment], decoded[i : i + segment])
        for i in range(0, len(samples) - segment // 2, segment)
    ]
    whole_lag = lag_samples(samples, decoded)
    worst = max(abs(whole_lag), *map(abs, segment_lags))
    if worst / rate >= MAX_OFFSET_S:
        raise RuntimeError(
            f"{path}: decoded audio is offset by {worst:.2f} samples from the source"
        )
    error = decoded - samples
    return {
        "pages": pages,
        "kbit_s": path.stat().st_size * 8 / (len(samples) / rate) / 1000,
        "lag": whole_lag,
        "worst_segment_lag": max(segment_lags, key=abs),
        "n_segments": len(segment_lags),
        "corr": float(np.corrcoef(samples, decoded)[0, 1]),
        "snr_db": float(10 * np.log10(np.sum(samples**2.0) / np.sum(error**2.0))),
    }


def espeak_version() -> str:
    """The first line of ``espeak-ng --version``."""
    return subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "featstore" / "datasets" / "demo_data",
    )
    args = parser.parse_args()
    text = " ".join(STORY.split())
    tokens = tokenize(text)
    audio, synth_rate, events = synthesize(text, VOICE, RATE_WPM)
    timings = word_timings(tokens, events, len(audio))

    args.out.mkdir(parents=True, exist_ok=True)
    resampled = soxr.resample(audio.astype(np.float32) / 32768.0, synth_rate, OUT_RATE, "VHQ")
    # espeak-ng speaks near full scale and resampling overshoots: leave 1 dB of headroom
    resampled *= PEAK / np.abs(resampled).max()
    check = write_opus(args.out / "story.ogg", resampled.astype(np.float32), OUT_RATE)
    with open(args.out / "story_align.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["word", "word_lower", "onset", "offset"])
        for token, (onset, offset) in zip(tokens, timings, strict=True):
            writer.writerow(
                [token.text, token.lower, f"{onset / synth_rate:.4f}", f"{offset / synth_rate:.4f}"]
            )
    print(
        f"{espeak_version()}; voice {VOICE}, {RATE_WPM} wpm: {len(tokens)} words, "
        f"{len(audio) / synth_rate:.2f} s at {synth_rate} Hz → {OUT_RATE} Hz Ogg Opus in {args.out}"
    )
    print(
        f"Opus {OPUS_BITRATE / 1000:.0f} kbit/s target, {check['kbit_s']:.1f} kbit/s average, "
        f"{check['pages']} Ogg pages; decoded vs source: offset {check['lag']:+.3f} samples "
        f"(worst of {check['n_segments']} segments of {SEGMENT_S:.0f} s: "
        f"{check['worst_segment_lag']:+.3f}), correlation {check['corr']:.5f}, "
        f"SNR {check['snr_db']:.1f} dB"
    )


if __name__ == "__main__":
    main()
