"""Run every library notebook under pytest: one test per notebook, cells flagged `slow` or `cuda` skipped.

The experiment and paper notebooks (nbs/experiments, nbs/paper) are executed by tests/test_reproduce.py through
the papermill runner instead, since they need parameters and run folders.
"""
import os
from pathlib import Path

import pytest

NBS = Path(__file__).resolve().parents[1] / "nbs"
NOTEBOOKS = sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith("_"))
SKIP = [f for f in os.environ.get("PID_SSL_SKIP_FLAGS", "slow cuda").split() if f]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook(nb):
    from nbdev.test import test_nb
    ok, secs = test_nb(nb, skip_flags=SKIP, showerr=True)
    assert ok, f"{nb.name} failed after {secs:.1f}s (traceback above)"
