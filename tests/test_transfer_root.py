"""Transfer evaluation reads its dataset from the run's `root`, like the pretraining data: a paper run whose data live
under `--root` (not in $PID_SSL_DATA or the default places) must not fail at its last step."""
import pytest
import torch
from torch import nn

from pid_ssl.config import RunConfig
from pid_ssl.runeval import _transfer
from test_paper_configs import write_cifar


def _backbone():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()


def test_transfer_reads_the_runs_root(tmp_path, monkeypatch):
    monkeypatch.delenv("PID_SSL_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.cache/pid_ssl
    monkeypatch.chdir(tmp_path)  # no ./data
    root = tmp_path / "datasets"
    write_cifar(root, "cifar100", n_train=200, n_test=100)
    cfg = RunConfig(dataset="cifar10", root=str(root), transfer="cifar100", image_size=16, linear_epochs=2, device="cpu")
    m = _transfer(cfg, _backbone(), dict(channels=3), torch.device("cpu"))  # meta: the pretraining data's channels
    assert {"transfer_linear_top1", "transfer_knn20_top1"} <= set(m), sorted(m)
    assert all(0 <= m[k] <= 100 for k in ("transfer_linear_top1", "transfer_knn20_top1"))
    with pytest.raises(Exception, match="cifar100 .* was not found"):  # the same run without its root: the loader names what it misses
        _transfer(RunConfig(dataset="cifar10", transfer="cifar100", image_size=16, linear_epochs=2, device="cpu"), _backbone(), dict(channels=3), torch.device("cpu"))
