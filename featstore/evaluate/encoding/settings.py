"""Settings of one encoding model: split, PCA, FIR delays, ridge grid, fusion method.

The defaults reproduce the reference study's pipeline (test = last 20 %, PCA 250, FIR window
4 with offset 1, concatenation fusion) with cross-validated alphas instead of its fixed one;
``alpha=<value>`` switches the cross-validation off and reproduces its protocol exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from featstore.errors import InputError

#: The default ridge grid: 21 values from 1e-2 to 1e8, half a decade apart. Wide on
#: purpose: the edge warning says when the chosen alphas still pile up at either end.
DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-2, 8, 21))

METHODS = ("concat", "banded")
DTYPES = ("float32", "float64")


def delays_from_fir(fir_window: int = 4, fir_offset: int = 1) -> tuple[int, ...]:
    """The FIR delays of the reference study's ``fir_window``/``fir_offset`` options.

    Parameters
    ----------
    fir_window : int
        Number of delayed copies of the features.
    fir_offset : int
        Delay of the first copy, in TRs (1: the response at TR t is predicted from the
        stimulus of TRs t-1, t-2, …).

    Returns
    -------
    tuple of int
        ``(fir_offset, …, fir_offset + fir_window - 1)``; ``(1, 2, 3, 4)`` by default.

    Examples
    --------
    >>> from featstore.evaluate.encoding import delays_from_fir
    >>> delays_from_fir(), delays_from_fir(fir_window=3, fir_offset=2)
    ((1, 2, 3, 4), (2, 3, 4))
    """
    if int(fir_window) < 1:
        raise InputError(f"fir_window={fir_window}: expected at least 1 delay")
    return tuple(range(int(fir_offset), int(fir_offset) + int(fir_window)))


#: Help of the FIR options that build ``delays`` (:func:`delays_from_fir`), as the CLI
#: shows them beside the fields' own help.
FIR_HELP = {"fir_window": "Number of FIR delays.", "fir_offset": "First FIR delay in TRs."}

_DEFAULT = object()


def _meta(help: str, kind: type | None = None, shown_default: Any = _DEFAULT) -> dict[str, Any]:
    """Field metadata read by the CLI's option group (``featstore.cli._encoding_options``).

    ``help`` is one sentence; ``kind`` the scalar type when the default (``None``) does not
    tell it; ``shown_default`` what ``[default: …]`` says (``None``: no default shown, the
    field's own default otherwise).
    """
    meta: dict[str, Any] = {"help": help}
    if kind is not None:
        meta["kind"] = kind
    if shown_default is not _DEFAULT:
        meta["shown_default"] = shown_default
    return meta


@dataclass(frozen=True)
class EncodingSettings:
    """Everything that defines one encoding model (and nothing about how fast it runs).

    Attributes
    ----------
    trim : int or None
        TRs dropped at each edge of the run before splitting. ``None`` drops
        ``max(|delays|)`` TRs, the reference study's rule: the first TRs have no complete
        stimulus history for the FIR delays.
    test_frac : float
        Fraction of the (trimmed) TRs held out as the test part: the last ones.
    gap : int
        TRs dropped between train and test and on both sides of every CV validation block,
        against the leak of BOLD autocorrelation and of the FIR window across a boundary.
        Raised to ``-min(delays)`` for negative delays (see ``resolved_gap``).
    pca : int
        PCA components fitted on the train part (``0`` keeps the z-scored features).
        With ``method="banded"`` the components are split between the spaces.
    delays : tuple of int
        FIR delays in TRs (positive: the stimulus precedes the response).
    alphas : tuple of float
        Ridge grid searched by cross-validation, per ROI and subject.
    cv : int
        Number of contiguous folds of the train part.
    alpha : float or None
        A fixed ridge alpha: no cross-validation (the reference study's protocol).
    method : str
        Fusion of two feature spaces: ``"concat"`` (z-score each, concatenate, joint PCA)
        or ``"banded"`` (one alpha per space).
    dtype : str
        ``"float32"`` (fast) or ``"float64"`` (exact mode) for the products with the targets.

    Examples
    --------
    >>> from featstore.evaluate.encoding import EncodingSettings
    >>> settings = EncodingSettings(pca=100, cv=3)
    >>> settings.delays, settings.test_frac, settings == EncodingSettings(cv=3, pca=100)
    ((1, 2, 3, 4), 0.2, True)
    """

    trim: int | None = field(
        default=None,
        metadata=_meta("TRs dropped at each edge.", int, shown_default="the largest delay"),
    )
    test_frac: float = field(default=0.2, metadata=_meta("Fraction of TRs in the final test part."))
    gap: int = field(
        default=0,
        metadata=_meta(
            "TRs dropped between train and test and between CV folds; raised to "
            "-min(delays) for negative delays."
        ),
    )
    pca: int = field(default=250, metadata=_meta("PCA components (0 = no PCA)."))
    delays: tuple[int, ...] = field(
        default=delays_from_fir(),
        metadata=_meta("Explicit delays in TRs, e.g. 1,2,3,4,5,6,7,8.", shown_default=None),
    )
    alphas: tuple[float, ...] = field(
        default=DEFAULT_ALPHAS,
        metadata=_meta("Ridge alphas for CV: 1,10,100 or logspace:-2:8:21.", shown_default=None),
    )
    cv: int = field(default=5, metadata=_meta("Contiguous CV folds on the train part."))
    alpha: float | None = field(
        default=None,
        metadata=_meta("One fixed alpha, no CV (the reference protocol).", float, None),
    )
    method: str = field(default="concat", metadata=_meta("Fusion method: concat or banded."))
    dtype: str = field(default="float32", metadata=_meta("float32 or float64 arithmetic."))

    def __post_init__(self) -> None:
        # Normalise sequences so that equal settings compare (and hash) equal.
        set_ = object.__setattr__
        set_(self, "delays", tuple(int(d) for d in self.delays))
        set_(self, "alphas", tuple(sorted(float(a) for a in self.alphas)))
        if self.trim is not None:
            set_(self, "trim", int(self.trim))
        if self.alpha is not None:
            set_(self, "alpha", float(self.alpha))
        self._check()

    def _check(self) -> None:
        if self.trim is not None and self.trim < 0:
            raise InputError(f"trim={self.trim}: expected 0 or more TRs")
        if not (0.0 < self.test_frac < 1.0):
            raise InputError(f"test_frac={self.test_frac}: expected a fraction in (0, 1)")
        if self.gap < 0:
            raise InputError(f"gap={self.gap}: expected 0 or more TRs")
        if self.pca < 0:
            raise InputError(f"pca={self.pca}: expected 0 (no PCA) or a number of components")
        if not self.delays:
            raise InputError("`delays`: expected at least one delay")
        if len(set(self.delays)) != len(self.delays):
            raise InputError(f"delays={list(self.delays)}: expected distinct delays")
        if self.alpha is None:
            if not self.alphas:
                raise InputError("`alphas`: expected at least one alpha")
            bad = [a for a in self.alphas if not (a > 0 and math.isfinite(a))]
            if bad:
                raise InputError(f"`alphas`: {bad[0]} is not a positive finite number")
            if len(set(self.alphas)) != len(self.alphas):
                raise InputError("`alphas`: expected distinct values")
            if self.cv < 2:
                raise InputError(f"cv={self.cv}: expected at least 2 folds")
        elif not (self.alpha > 0 and math.isfinite(self.alpha)):
            raise InputError(f"alpha={self.alpha}: expected a positive finite number")
        if self.method not in METHODS:
            raise InputError(f"method={self.method!r}: expected one of {', '.join(METHODS)}")
        if self.dtype not in DTYPES:
            raise InputError(f"dtype={self.dtype!r}: expected one of {', '.join(DTYPES)}")

    @property
    def resolved_trim(self) -> int:
        """TRs dropped at each edge: ``trim``, or ``max(|delays|)`` when it is ``None``."""
        return self.trim if self.trim is not None else max(abs(d) for d in self.delays)

    @property
    def resolved_gap(self) -> int:
        """The gap used: ``gap``, raised to ``-min(delays)`` when a delay is negative.

        With a delay ``d < 0``, design row ``t`` holds the stimulus of TR ``t - d``, a later
        TR: the last ``-d`` train rows would hold the stimulus of the first test TRs (and
        of each CV validation block). A gap of ``-min(delays)`` keeps every train row's
        stimulus inside the train part.
        """
        return max(self.gap, -min(self.delays))

    @property
    def gap_notice(self) -> str | None:
        """What to tell the user when ``resolved_gap`` differs from ``gap``, else None."""
        if self.resolved_gap == self.gap:
            return None
        return (
            f"delay {min(self.delays)} makes train row t hold the stimulus of TR "
            f"t+{-min(self.delays)}: `gap` raised from {self.gap} to {self.resolved_gap} TRs "
            "(gap >= -min(delays)) so that no train row holds the stimulus of a test TR or "
            "of a CV validation block"
        )

    @property
    def cross_validated(self) -> bool:
        """Whether alpha is chosen by cross-validation (no fixed ``alpha``)."""
        return self.alpha is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (lists for tuples); ``from_dict`` restores an equal object."""
        values = asdict(self)
        values["delays"] = list(self.delays)
        values["alphas"] = list(self.alphas)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EncodingSettings:
        """Settings from ``to_dict`` output (e.g. a results group's attrs).

        Unknown keys are an error: they would mean settings this version cannot reproduce.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(
                f"unknown encoding settings {unknown}; expected keys among {sorted(known)}"
            )
        return cls(**values)
