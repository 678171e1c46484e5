import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_evaluation_never_imports_model_code():
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from featstore.evaluate import EncodingSettings, encode
        rng = np.random.default_rng(0)
        features = rng.standard_normal((60, 9))
        bold = rng.standard_normal((2, 60, 4)).astype(np.float32)
        encode([features, features[:, :5]], bold, EncodingSettings(pca=4), partition=True)
        encode([features, features[:, :5]], bold, EncodingSettings(pca=4, method="banded",
               alphas=(1.0, 100.0)))
        print(sorted(m for m in ("torch", "transformers") if m in sys.modules))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
