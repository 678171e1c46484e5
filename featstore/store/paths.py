"""Names inside a store: model keys, window names and group paths."""

from __future__ import annotations

import re

from featstore.errors import InputError
from featstore.store import _schema as S


def model_key(model_id: str) -> str:
    """Filesystem-safe key of a model id: ``microsoft/wavlm-base-plus`` → ``microsoft--wavlm-base-plus``.

    Local paths keep their last component (``/data/my-model/`` → ``my-model``).

    Parameters
    ----------
    model_id : str
        A Hugging Face model id or a local model directory.

    Returns
    -------
    str
        The key, safe as a folder name on every platform.

    Examples
    --------
    >>> from featstore.store import model_key
    >>> model_key("microsoft/wavlm-base-plus"), model_key("/data/my-model/")
    ('microsoft--wavlm-base-plus', 'my-model')
    """
    text = str(model_id).strip().rstrip("/")
    if text.startswith((".", "/", "~")) or "\\" in text or text.count("/") > 1:
        text = re.split(r"[\\/]", text)[-1]
    key = re.sub(r"[^A-Za-z0-9._-]+", "-", text.replace("/", "--")).strip("-.")
    if not key or not S._KEY_RE.match(key):
        raise InputError(f"cannot make a feature key from model id {model_id!r}")
    return key


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid feature key, else raise :class:`InputError`."""
    if not isinstance(key, str) or not S._KEY_RE.match(key):
        raise InputError(
            f"invalid feature key {key!r}: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return key


def window_name(*, ctx: int | None = None, tr_win: int | None = None) -> str:
    """``window_name(ctx=200)`` → ``'ctx200'``; ``window_name(tr_win=6)`` → ``'tr6'``.

    Parameters
    ----------
    ctx : int, optional
        Words of context of a text feature set.
    tr_win : int, optional
        TRs of audio of an audio feature set (give exactly one of the two).

    Returns
    -------
    str
        ``ctx<N>`` or ``tr<N>``.

    Examples
    --------
    >>> from featstore.store import window_name
    >>> window_name(ctx=200), window_name(tr_win=6)
    ('ctx200', 'tr6')
    """
    if (ctx is None) == (tr_win is None):
        raise InputError("give exactly one of ctx (words) or tr_win (TRs) for a window")
    kind, size = ("ctx", ctx) if ctx is not None else ("tr", tr_win)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise InputError(f"window size must be a positive integer, got {size!r}")
    return f"{kind}{size}"


def parse_window(window: str) -> tuple[str, int]:
    """``'ctx200'`` → ``('ctx', 200)``; ``'tr6'`` → ``('tr', 6)``.

    Parameters
    ----------
    window : str
        ``ctx<N>`` or ``tr<N>``.

    Returns
    -------
    kind : str
        ``'ctx'`` or ``'tr'``.
    size : int

    Examples
    --------
    >>> from featstore.store import parse_window
    >>> parse_window("tr6")
    ('tr', 6)
    """
    match = S._WINDOW_RE.match(str(window))
    if not match:
        raise InputError(
            f"invalid window {window!r}: expected ctxN (words of context) or trN (TRs of audio)"
        )
    return match.group(1), int(match.group(2))


def feature_group(key: str, window: str) -> str:
    """Group path of a feature set: ``features/<key>/<window>``.

    Parameters
    ----------
    key, window : str
        Feature key (:func:`model_key`) and window (:func:`window_name`).

    Returns
    -------
    str
        ``features/<key>/<window>``.

    Examples
    --------
    >>> from featstore.store import feature_group
    >>> feature_group("gpt2", "ctx200")
    'features/gpt2/ctx200'
    """
    check_key(key)
    parse_window(window)
    return f"{S.FEATURES}/{key}/{window}"


def split_feature_group(group: str) -> tuple[str, str]:
    """``'features/gpt2/ctx200'`` → ``('gpt2', 'ctx200')``."""
    parts = group.strip("/").split("/")
    if len(parts) != 3 or parts[0] != S.FEATURES:
        raise InputError(f"not a feature group path: {group!r} (expected features/<key>/<window>)")
    return check_key(parts[1]), parse_window(parts[2]) and parts[2]


def result_group(run_id: str) -> str:
    """Group path of an evaluation run: ``results/<run_id>``.

    Parameters
    ----------
    run_id : str
        Name of the run.

    Returns
    -------
    str
        ``results/<run_id>``.

    Examples
    --------
    >>> from featstore.store import result_group
    >>> result_group("grid-1")
    'results/grid-1'
    """
    if not S._RUN_RE.match(str(run_id)):
        raise InputError(f"invalid run id {run_id!r}: use letters, digits, '.', '_' and '-'")
    return f"{S.RESULTS}/{run_id}"
