"""The optional TensorBoard sink (RunConfig.tensorboard): a run with it has the same history and metrics as one
without, and its event files hold the history's and the metrics' numbers under the same names."""
import json
from pathlib import Path

import pytest

pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed (pip install 'pid_ssl[tensorboard]')")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from pid_ssl.config import RunConfig, identity_diff  # noqa: E402
from pid_ssl.files import read_jsonl  # noqa: E402
from pid_ssl.layout import TENSORBOARD  # noqa: E402
from pid_ssl.train import TIMING_KEYS, fit  # noqa: E402

TINY = dict(dataset="synthetic", n_train=64, n_test=32, eval_n_train=64, image_size=16, arch="resnet10t",
            backbone_kwargs='{"channels": [8, 16, 32, 64]}', projector="32-32", batch_size=32, pid_proj_dim=4, method="bt_pid",
            epochs=2, eval_every=1, knn_k="5", linear_wds="0", warmup_epochs=1, linear_epochs=1, semi_fractions="",
            precision="fp32", device="cpu", progress=False)  # about 13 s a run on a loaded 2-core machine
UNTIMED = lambda d: {k: v for k, v in d.items() if k not in TIMING_KEYS}  # noqa: E731


def test_tensorboard_sink_changes_nothing_and_writes_events(tmp_path):
    plain = fit(RunConfig.make(TINY, out_dir=str(tmp_path / "plain")))
    logged = fit(RunConfig.make(TINY, out_dir=str(tmp_path / "tb"), tensorboard=True))
    assert UNTIMED(logged) == UNTIMED(plain)
    hist = read_jsonl(tmp_path / "tb" / "history.jsonl")
    assert [UNTIMED(h) for h in hist] == [UNTIMED(h) for h in read_jsonl(tmp_path / "plain" / "history.jsonl")]
    assert not (tmp_path / "plain" / TENSORBOARD).exists()
    events = list((tmp_path / "tb" / TENSORBOARD).glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    acc = EventAccumulator(str(tmp_path / "tb" / TENSORBOARD)); acc.Reload()
    tags = set(acc.Tags()["scalars"])
    # the losses, PID terms, gradient shares, online probe, the evaluations during and after training
    for k in ("loss", "base_loss", "redundancy", "synergy", "pid_grad_share", "online_probe_top1", "knn5_top1", "lr"):
        assert f"train/{k}" in tags, k
        assert [e.step for e in acc.Scalars(f"train/{k}")] == [h["epoch"] for h in hist if k in h], k
        assert [e.value for e in acc.Scalars(f"train/{k}")] == pytest.approx([h[k] for h in hist if k in h], rel=1e-6), k
    for k in ("linear_top1", "knn5_top1", "online_probe_top1", "label_gauss_redundancy"):
        assert [(e.step, e.value) for e in acc.Scalars(f"eval/{k}")] == [(2, pytest.approx(logged[k], rel=1e-6))], k
    # the sink is not part of a run's identity: the same run, finished, with or without it
    args = json.loads((tmp_path / "plain" / "params.json").read_text())["args"]
    assert identity_diff(args, RunConfig.make(TINY, out_dir="x", tensorboard=True)) == {}
