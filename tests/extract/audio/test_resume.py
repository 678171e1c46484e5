"""Kill an extraction with SIGKILL after staged blocks, rerun it: the result is identical."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from featstore import store as fs
from featstore.extract import window_run
from featstore.extract.run import extract

ROOT = Path(__file__).resolve().parents[3]

# Dies by SIGKILL right after block 1 of tr1 is staged (block 0 of tr1 and tr3 are
# staged before it): no cleanup, no finally block runs.
KILLER = """
import os, signal, sys
from featstore.store.staging import BlockStage
from featstore.extract.run import extract

write_block = BlockStage.write_block

def write_then_die(self, index, **values):
    write_block(self, index, **values)
    if index == 1:
        os.kill(os.getpid(), signal.SIGKILL)

BlockStage.write_block = write_then_die
extract(sys.argv[1], sys.argv[2], tr_wins=[1, 3], batch_size=2, threads=1)
"""


def test_kill_and_resume_equals_uninterrupted(tiny_models, make_store, monkeypatch):
    store = make_store(name="killed")
    fresh = make_store(name="fresh")
    model = tiny_models["hubert"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, str(store), model], env=env, cwd=ROOT, capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    block_trs = 2 * window_run.BATCHES_PER_BLOCK
    # block 0 of both windows and block 1 of tr1 were staged; no final group exists
    assert fs.group_exists(store, "_work/features/hubert/tr1")
    assert not fs.group_exists(store, "features/hubert/tr1")

    encoded = {1: 0, 3: 0}
    original = window_run.block_windows

    def counting(*args, **kwargs):
        for batch in original(*args, **kwargs):
            encoded[batch.tr_win] += len(batch.trs)
            yield batch

    monkeypatch.setattr(window_run, "block_windows", counting)
    extract(store, model, tr_wins=[1, 3], batch_size=2, threads=1)
    n_tr = 20
    assert encoded == {1: n_tr - 2 * block_trs, 3: n_tr - block_trs}
    extract(fresh, model, tr_wins=[1, 3], batch_size=2, threads=1)
    for window in ("tr1", "tr3"):
        resumed = fs.open_feature_set(store, "hubert", window)["hidden"].values
        uninterrupted = fs.open_feature_set(fresh, "hubert", window)["hidden"].values
        np.testing.assert_array_equal(resumed, uninterrupted)
    assert not fs.group_exists(store, "_work/features/hubert/tr1")
    assert fs.validate(store) == []
