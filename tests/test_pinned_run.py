"""A fixed smoke run's history and metrics, pinned: what a refactor must not change.

`tests/data/pinned_run.json` holds the configuration, every per-epoch row and the final metrics (timings left out) of
one smoke run (one torch thread, CPU), written when the evaluation became one protocol for every run (BatchNorm
statistics re-estimated on clean train images, fixed-schedule semi-supervised fine-tuning, three label-information
estimators). The same configuration must give the same numbers today.

`tests/data/pinned_training_8448eee.json` is the same run as the code at commit 8448eee computed it (before the
structure change and the new evaluation). Training itself has not changed since: every training term of its history
(losses, PID terms, gradient norms, learning rate, online probe; not the evaluations, whose protocol changed, nor the
terms added later) must still come out the same.
"""
import json
import math
from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"
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


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from pid_ssl.files import read_jsonl
    from pid_ssl.train import fit
    pin = json.loads((DATA / "pinned_run.json").read_text())
    out = tmp_path_factory.mktemp("pinned") / "run"
    threads = torch.get_num_threads(); torch.set_num_threads(1)
    try: m = fit(out_dir=str(out), **pin["config"])
    finally: torch.set_num_threads(threads)
    hist = [{k: v for k, v in r.items() if k not in TIMING} for r in read_jsonl(out / "history.jsonl")]
    return pin, hist, {k: v for k, v in m.items() if k not in TIMING}


def test_pinned_smoke_run(run):
    pin, hist, metrics = run
    _same(pin["history"], hist, "history")
    _same(pin["metrics"], metrics, "metrics")


def test_training_unchanged_since_8448eee(run):
    old = json.loads((DATA / "pinned_training_8448eee.json").read_text())
    pin, hist, _ = run
    assert {k: v for k, v in old["config"].items() if k != "semi_epochs"} == {k: v for k, v in pin["config"].items() if k != "semi_steps"}
    training = lambda row: {k: v for k, v in row.items() if not k.startswith(("label_", "knn")) and k not in TIMING}
    _same([training(r) for r in old["history"]], [{k: r[k] for k in training(o)} for o, r in zip(old["history"], hist)], "history")
