"""Audio large language models (Qwen2-Audio) on audio windows: every LLM layer.

An audio LLM encodes a window of audio with its Whisper-like audio tower, projects the
encoder frames into the language model's embedding space, and reads them as a run of
``<|AUDIO|>`` tokens between ``<|audio_bos|>`` and ``<|audio_eos|>``. The stored layers
are the **language model's**: layer 0 = its input embeddings (the projected audio at
the audio positions), 1..L = its decoder blocks as transformers reports them (the last
after the final norm). Each layer is averaged over the audio-token positions, i.e. the
LLM's states for the window's audio; the frames of the feature extractor's 30-s padding
never become tokens (the processor counts the tokens from the valid mel frames, 25 per
second of audio for Qwen2-Audio: mel hop 10 ms, conv stride 2, average pooling 2).

The prompt is the processor's audio placeholder only (no instruction text, no chat
template), so every window is read the same way. Windows of one size give the same
number of audio tokens, so a batch is never padded. The audio tower is limited to 30 s
of audio (``--tr-win`` × TR must not exceed it).

**Transcript so far** (``transcript=N``): each window is read with the words heard by
its end (:mod:`featstore.extract.transcript`: words whose offset is at most the
window's end sample, the last ``N``) written as text, then a newline, **before** the
audio placeholder: ``"<words>\\n<|audio_bos|><|AUDIO|>…<|audio_eos|>"`` (with no word
heard yet, the bare placeholder). The language
model is causal, so only text placed before the audio tokens can change the states at
the audio tokens (which are what is pooled); text after them would leave every stored
vector as it is without it. Prompts then differ in length from window to window, so
windows are run one at a time (no padding, positions exact). The feature key gets the
suffix ``.transcriptN`` (``qwen2-audio.transcript32/tr2``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from featstore.errors import ModelError
from featstore.extract.common import load_for_inference
from featstore.extract.pooling import last_frames, masked_mean
from featstore.extract.registry import ModelSpec
from featstore.extract.transcript import TRANSCRIPT_RULE, check_transcript_words
from featstore.extract.window_run import WindowEncoder

#: What each window is given to read: the audio placeholder of Qwen2-Audio's processor.
PROMPT = "<|audio_bos|><|AUDIO|><|audio_eos|>"
#: The prompt of a window read with the transcript so far (``transcript=N``).
TRANSCRIPT_PROMPT = "{transcript}\n" + PROMPT
#: Mel frames per audio token: the audio tower's conv stride 2, then average pooling 2
#: (the processor's token count ``((mel - 1) // 2 + 1 - 2) // 2 + 1``).
MEL_FRAMES_PER_TOKEN = 4


def audio_token_count(n_samples: int, hop_length: int) -> int:
    """Audio tokens the processor gives ``n_samples`` of audio (``ceil(n / hop)`` mel frames).

    Parameters
    ----------
    n_samples
        Length of the audio, in samples.
    hop_length
        Samples per mel frame (the feature extractor's ``hop_length``).

    Returns
    -------
    int
        The ``<|AUDIO|>`` tokens the prompt holds for that audio.

    Examples
    --------
    >>> audio_token_count(8000, 160)  # 0.5 s: 50 mel frames -> 25 -> 12 tokens
    12
    """
    mel_frames = -(-int(n_samples) // int(hop_length))
    return ((mel_frames - 1) // 2 + 1 - 2) // 2 + 1


def window_prompt(transcript: str) -> str:
    """The text of one window: the audio placeholder, after the transcript when not empty.

    Parameters
    ----------
    transcript
        The words heard by the window's end, as one text (``""``: none yet).

    Returns
    -------
    str
        :data:`PROMPT`, or :data:`TRANSCRIPT_PROMPT` filled with ``transcript``.

    Examples
    --------
    >>> window_prompt("")
    '<|audio_bos|><|AUDIO|><|audio_eos|>'
    >>> window_prompt("once upon a")
    'once upon a\\n<|audio_bos|><|AUDIO|><|audio_eos|>'
    """
    if not transcript:  # nothing heard yet: the window is read as without a transcript
        return PROMPT
    return TRANSCRIPT_PROMPT.format(transcript=transcript)


def load_audio_llm(
    spec: ModelSpec, *, transcript: int | None = None, **options: Any
) -> WindowEncoder:
    """Load a Qwen2-Audio model and its processor as a :class:`WindowEncoder`.

    ``transcript=N`` reads each window with the last ``N`` words heard by its end (the
    loop passes ``transcripts=``, one text per window; see the module docstring).
    ``options`` (``device``, ``revision``, ``precision``) go to :func:`load_for_inference`.
    """
    import torch
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    transcript = check_transcript_words(transcript)
    loaded = load_for_inference(AutoProcessor, Qwen2AudioForConditionalGeneration, spec, **options)
    processor, model, device = loaded.processor, loaded.model, loaded.device
    audio_token_id = int(model.config.audio_token_id)
    sample_rate = int(processor.feature_extractor.sampling_rate)
    hop_length = int(processor.feature_extractor.hop_length)

    def run(windows: np.ndarray, texts: list[str], pool_samples: int | None) -> np.ndarray:
        inputs = processor(
            text=texts, audio=list(windows), sampling_rate=sample_rate, return_tensors="pt"
        ).to(device)
        audio_positions = inputs["input_ids"] == audio_token_id
        if not bool(audio_positions.any(dim=1).all()):
            raise ModelError(
                f"{spec.name}: a window of {windows.shape[1]} samples gives no audio token; "
                "use a longer `tr_wins`"
            )
        if pool_samples is not None:  # only the tokens of the last pool_samples
            audio_positions = last_frames(
                audio_positions, audio_token_count(pool_samples, hop_length)
            )
        with torch.inference_mode():
            with loaded.forward_precision():
                states = model(**inputs, output_hidden_states=True).hidden_states
            # pooled in float32, outside autocast
            return masked_mean(states, audio_positions)

    def encode(
        windows: np.ndarray,
        pool_samples: int | None = None,
        transcripts: list[str] | None = None,
    ) -> np.ndarray:
        if (transcripts is None) != (transcript is None):
            raise ModelError(
                f"{spec.name}: loaded with transcript={transcript} but given "
                f"{'no' if transcripts is None else len(transcripts)} transcripts"
            )
        if transcripts is None:
            return run(windows, [PROMPT] * len(windows), pool_samples)
        # prompts differ in length: one window at a time, never padded
        return np.concatenate(
            [
                run(windows[i : i + 1], [window_prompt(text)], pool_samples)
                for i, text in enumerate(transcripts)
            ],
            axis=1,
        )

    text_config = model.config.text_config
    n_blocks = int(text_config.num_hidden_layers)
    settings = {
        "model_type": model.config.model_type,
        "prompt": PROMPT,
        "layers_of": "language model",
    }
    if transcript is not None:
        settings.update(
            prompt=TRANSCRIPT_PROMPT, transcript_words=transcript, transcript_rule=TRANSCRIPT_RULE
        )
    return WindowEncoder(
        encode=encode,
        layer_names=["embeddings"] + [f"block{i}" for i in range(1, n_blocks + 1)],
        dim=int(text_config.hidden_size),
        pooling="mean over the language model's audio-token positions (no padding frames)",
        settings=settings,
        model=model,
        revision=loaded.revision,
        max_window_s=int(processor.feature_extractor.n_samples) / sample_rate,
        frame_samples=MEL_FRAMES_PER_TOKEN * hop_length,
        transcript_words=transcript,
    )
