"""Alphas chosen at an edge of the grid: which fits, and the warning that the grid is narrow.

An alpha chosen at the grid's edge means the grid did not bracket the best alpha. One rule
for every evaluator (one story, across stories): at the smallest alpha every fit counts (the
data ask for less regularisation than the grid offers); at the largest only fits the
features predict (CV R² > 0), since shrinking to zero is the right answer for the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["EDGE_WARNING_FRACTION", "edge_alpha_warnings", "edge_masks"]

#: Share of fits whose alpha sits at one edge of the grid above which a warning says so.
EDGE_WARNING_FRACTION = 0.10


def edge_masks(
    alpha: np.ndarray,
    valid: np.ndarray,
    cv_score: np.ndarray | None,
    alphas: Sequence[float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fits at the smallest alpha, at the largest (predictable ones only), and predictable.

    Parameters
    ----------
    alpha : ndarray
        Chosen alpha per fit.
    valid : ndarray of bool
        Fits that count (a target constant over the training rows does not).
    cv_score : ndarray or None
        CV R² of the chosen alpha per fit (None: every valid fit is predictable).
    alphas : sequence of float
        The grid, ascending.

    Returns
    -------
    at_low, at_high, predictable : ndarray of bool

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.evaluate.encoding.alpha_edges import edge_masks
    >>> low, high, _ = edge_masks(np.array([1.0, 100.0, 100.0]), np.ones(3, bool),
    ...                           np.array([0.1, 0.2, -0.1]), [1.0, 10.0, 100.0])
    >>> low.tolist(), high.tolist()
    ([True, False, False], [False, True, False])
    """
    predictable = valid if cv_score is None else valid & (cv_score > 0)
    at_low = valid & (alpha == alphas[0])
    at_high = predictable & (alpha == alphas[-1])
    return at_low, at_high, predictable


def edge_alpha_warnings(
    counts: Sequence[int], alphas: Sequence[float], fits: str = "subject x ROI fits"
) -> list[str]:
    """A warning per edge of the alpha grid where more than 10 % of the fits landed.

    Parameters
    ----------
    counts : sequence of int
        (at the smallest alpha, fits, at the largest alpha, predictable fits).
    alphas : sequence of float
        The grid, ascending.
    fits : str
        What was counted, for the message.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from featstore.evaluate.encoding.alpha_edges import edge_alpha_warnings
    >>> edge_alpha_warnings((0, 50, 30, 40), [0.1, 10.0, 1000.0])[0][:46]
    'the chosen alpha is the largest of the grid (1'
    """
    at_low, n_valid, at_high, n_predictable = counts
    warnings = []
    for count, n_fits, edge, value, what, hint in (
        (at_low, n_valid, "smallest", alphas[0], "", "add smaller alphas"),
        (
            at_high,
            n_predictable,
            "largest",
            alphas[-1],
            " predictable (CV R² > 0)",
            "add larger alphas",
        ),
    ):
        if n_fits and count > EDGE_WARNING_FRACTION * n_fits:
            warnings.append(
                f"the chosen alpha is the {edge} of the grid ({value:g}) for {count} of "
                f"{n_fits}{what} {fits} ({100 * count / n_fits:.1f} %); the grid is "
                f"too narrow: {hint} to `alphas`"
            )
    return warnings
