"""Regenerate featstore's bundled demo story: speech and exact word timings from espeak-ng.

The story text below was written for featstore and is dedicated to the public domain.
The speech is synthesized by libespeak-ng (called through ctypes); every word's onset is
the sample at which the synthesizer emitted that word's WORD event, and its offset is the
next word's onset or, when the synthesizer inserted a pause after the word, the start of
that pause phoneme. No timing is estimated from the audio.

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
thirty years, and now that his knees were stiff and his eyes were tired, the work \
belonged to her.
One windy autumn evening, a small gray cat appeared among the rocks below the tower. It was \
soaked and shivering, and it carried something bright in its mouth. Elena wrapped the \
animal in a wool blanket and set it beside the stove. When the cat finally opened its \
jaws, a silver key dropped onto the wooden floor.
Nobody down in town recognized the key. The baker shrugged, the schoolteacher frowned, \
and the fishermen laughed and said the sea was full of strange gifts. But her father \
turned the key slowly in his rough hands and grew very quiet.
That night he told her about a wooden chest his grandmother had buried beneath the garden \
wall during a terrible storm, long before the lighthouse had electricity. The family had \
searched for it many times, but the map was lost, and the key had vanished with it.
At dawn they carried shovels to the garden. The ground was cold and heavy with clay, and \
the wind pulled at their coats. After two hours of digging, Elena struck something hard. \
Together they lifted a small chest, its hinges green with age.
Inside, wrapped in oilcloth, they found letters, a faded photograph, and a brass compass \
whose needle still trembled toward the north. Her father read the first letter aloud, and \
his voice broke halfway through.
The cat stayed with them after that. Elena named it Harbor, and every evening it followed \
her up the stairs, watching the beam sweep slowly across the dark water.
"""

VOICE = "en-us"
RATE_WPM = 150
OUT_RATE = 16_000
PEAK = 0.89

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
    sf.write(args.out / "story.flac", resampled, OUT_RATE, subtype="PCM_16")
    with open(args.out / "story_align.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["word", "word_lower", "onset", "offset"])
        for token, (onset, offset) in zip(tokens, timings, strict=True):
            writer.writerow(
                [token.text, token.lower, f"{onset / synth_rate:.4f}", f"{offset / synth_rate:.4f}"]
            )
    print(
        f"{espeak_version()}; voice {VOICE}, {RATE_WPM} wpm: {len(tokens)} words, "
        f"{len(audio) / synth_rate:.2f} s at {synth_rate} Hz → {OUT_RATE} Hz FLAC in {args.out}"
    )


if __name__ == "__main__":
    main()
