"""A fixed smoke run's history and metrics, pinned to the values the code gave before the structure change.

`tests/data/pinned_run.json` was written by the code at commit 8448eee (before `fit` became a loop over a run state
and the run parameters one declaration): the configuration, every per-epoch row and the final metrics, timings left
out. The same configuration must give the same numbers today (one torch thread, CPU): a refactor that changes what a
run computes fails here.
"""
import json
import math
from pathlib import Path

import torch

PINNED = Path(__file__).parent / "data" / "pinned_run.json"
TIMING = ("pretrain_s", "eval_s", "wall_s", "pairs_per_s", "epoch_s")


def _same(a, b, path=""):
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys differ: {sorted(set(a) ^ set(b))}"
        for k in a: _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{path}: {len(a)} vs {len(b)} rows"
        for i, (x, y) in enumerate(zip(a, b)): _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, (int, float)):
        assert math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6), f"{path}: pinned {a!r}, now {b!r}"
    else:
        assert a == b, f"{path}: pinned {a!r}, now {b!r}"


def test_pinned_smoke_run(tmp_path):
    from pid_ssl.files import read_jsonl
    from pid_ssl.train import fit
    pin = json.loads(PINNED.read_text())
    threads = torch.get_num_threads(); torch.set_num_threads(1)
    try: m = fit(out_dir=str(tmp_path / "run"), **pin["config"])
    finally: torch.set_num_threads(threads)
    hist = [{k: v for k, v in r.items() if k not in TIMING} for r in read_jsonl(tmp_path / "run" / "history.jsonl")]
    _same(pin["history"], hist, "history")
    _same(pin["metrics"], {k: v for k, v in m.items() if k not in TIMING}, "metrics")
