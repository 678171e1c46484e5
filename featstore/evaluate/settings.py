"""TEMPORARY stand-in for evalnum's EncodingSettings (deleted when the real one lands)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class EncodingSettings:
    """Stand-in with the fields of the agreed contract."""

    trim: int | None = None
    test_frac: float = 0.2
    gap: int = 0
    pca: int = 250
    delays: tuple[int, ...] = (1, 2, 3, 4)
    alphas: tuple[float, ...] = field(default_factory=lambda: tuple(np.logspace(-2, 8, 21)))
    cv: int = 5
    alpha: float | None = None
    method: str = "concat"
    dtype: str = "float32"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["delays"] = list(self.delays)
        out["alphas"] = [float(a) for a in self.alphas]
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EncodingSettings:
        values = dict(values)
        values["delays"] = tuple(values["delays"])
        values["alphas"] = tuple(values["alphas"])
        return cls(**values)
