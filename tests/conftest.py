"""Test-session settings: one torch thread per pytest-xdist worker.

With `pytest -n 2` on a 2-core machine, two workers that each start 2 intra-op threads fight over the cores and
small ops run many times slower; one thread per worker keeps both cores busy without contention.
"""
import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    torch.set_num_threads(1)
