"""Two processes on the gloo backend (CPU) match one process at the same global batch.

Every rank draws the same global batch and augmentations and keeps its slice; the losses gather embeddings across
ranks with autograd, DDP averages gradients, and BatchNorm is synchronised. So the per-epoch losses and the final
weights of a 2-process run equal those of a 1-process run up to floating-point reduction order.
"""
import json
import os
import subprocess
import sys

import pytest
import torch

ARGS = ["--dataset", "synthetic", "--n_train", "128", "--n_test", "64", "--image_size", "16", "--projector",
        "64-64", "--batch_size", "32", "--epochs", "2", "--method", "bt_pid", "--precision", "fp32",
        "--linear_epochs", "0", "--device", "cpu", "--no-progress", "--warmup_epochs", "1", "--pid_proj_dim", "4",
        "--eval_preset", "quick"]  # training is compared, not the evaluation's numbers


def _history(out):
    return [json.loads(l) for l in open(os.path.join(out, "history.jsonl"))]



def test_two_processes_match_one(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "pid_ssl.train", "--out_dir", str(tmp_path / "one"), *ARGS],
                         capture_output=True, text=True, env=env)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "pid_ssl.train", "--out_dir", str(tmp_path / "two"), *ARGS],
                         capture_output=True, text=True, env=env)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    h1, h2 = _history(tmp_path / "one"), _history(tmp_path / "two")
    assert len(h1) == len(h2) == 2
    for a, b in zip(h1, h2):
        for k in ("loss", "base_loss", "on_diag", "off_diag", "redundancy", "synergy", "online_probe_loss"):
            assert abs(a[k] - b[k]) <= 1e-4 * max(1.0, abs(a[k])), (k, a[k], b[k])
    w1 = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=False)["model"]
    w2 = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=False)["model"]
    assert w1.keys() == w2.keys()
    worst = max((w1[k].float() - w2[k].float()).abs().max().item() for k in w1 if w1[k].is_floating_point())
    assert worst < 1e-3, worst
    assert json.load(open(tmp_path / "two" / "params.json"))["world_size"] == 2
