"""Every paper config, run for real at toy size on the CPU: the data swapped for small files in each dataset's real
on-disk format (CIFAR-10/100 pickled batches, STL-10 binaries, a Tiny-ImageNet-style ImageFolder tree) written here,
and the config layered under an override file that cuts its epochs, image counts, batch and seeds and moves it to
the CPU (configs/paper_*.yaml themselves unchanged). Each runs end to end through `pid_ssl_reproduce`: every setting
(every arm of configs/methods.yaml), then the paper notebooks.

Slow (about a minute per config on 2 cores): skipped unless PID_SSL_SKIP_FLAGS leaves out `slow`, e.g.
`PID_SSL_SKIP_FLAGS=cuda python -m pytest -q tests/test_paper_configs.py`.
"""
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from pid_ssl.methods import METHODS
from pid_ssl.reproduce import main
from pid_ssl.results import load_runs

ROOT = Path(__file__).resolve().parents[1]
SLOW_SKIPPED = "slow" in os.environ.get("PID_SSL_SKIP_FLAGS", "slow cuda").split()
pytestmark = pytest.mark.skipif(SLOW_SKIPPED, reason="slow: set PID_SSL_SKIP_FLAGS=cuda to run")


def _images(rng, n, c, h, w): return rng.integers(0, 256, (n, c, h, w), dtype=np.uint8)


def write_cifar(root: Path, name: str, n_train: int = 40, n_test: int = 40):
    "CIFAR-10 (cifar-10-batches-py: data_batch_1..5, test_batch, batches.meta) or CIFAR-100 (cifar-100-python: train, test, meta), pickled as the originals."
    rng = np.random.default_rng(0 if name == "cifar10" else 1)
    k, folder = (10, "cifar-10-batches-py") if name == "cifar10" else (100, "cifar-100-python")
    d = root / folder; d.mkdir(parents=True)
    def batch(n, off):
        data = _images(rng, n, 3, 32, 32).reshape(n, 3072)
        y = [(i + off) % k for i in range(n)]
        return {b"data": data, b"labels": y} if k == 10 else {b"data": data, b"fine_labels": y, b"coarse_labels": [v // 5 for v in y]}
    files = {f"data_batch_{i}": batch(n_train // 5, i) for i in range(1, 6)} if k == 10 else {"train": batch(n_train, 0)}
    files["test_batch" if k == 10 else "test"] = batch(n_test, 0)
    names = [f"c{i}".encode() for i in range(k)]
    files["batches.meta" if k == 10 else "meta"] = {b"label_names": names} if k == 10 else {b"fine_label_names": names}
    for f, obj in files.items(): (d / f).write_bytes(pickle.dumps(obj, protocol=2))


def write_stl10(root: Path, n: int = 40):
    "STL-10 binaries (stl10_binary/{train,test,unlabeled}_X.bin: uint8 3x96x96 column-major; *_y.bin: labels 1..10)."
    rng, d = np.random.default_rng(2), root / "stl10_binary"; d.mkdir(parents=True)
    for split in ("train", "test", "unlabeled"):
        (d / f"{split}_X.bin").write_bytes(_images(rng, n, 3, 96, 96).tobytes())
        if split != "unlabeled": (d / f"{split}_y.bin").write_bytes((np.arange(n) % 10 + 1).astype(np.uint8).tobytes())


def write_tiny_imagenet(root: Path, n_classes: int = 10, per_class: int = 4, n_val: int = 40):
    "Tiny ImageNet's layout: train/<wnid>/images/<wnid>_<i>.JPEG, val/images/val_<i>.JPEG + val/val_annotations.txt."
    from PIL import Image
    rng, wnids = np.random.default_rng(3), [f"n{i:08d}" for i in range(n_classes)]
    for w in wnids:
        (root / "train" / w / "images").mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(_images(rng, 1, 3, 64, 64)[0].transpose(1, 2, 0)).save(root / "train" / w / "images" / f"{w}_{i}.JPEG")
    (root / "val" / "images").mkdir(parents=True)
    lines = []
    for i in range(n_val):
        Image.fromarray(_images(rng, 1, 3, 64, 64)[0].transpose(1, 2, 0)).save(root / "val" / "images" / f"val_{i}.JPEG")
        lines.append(f"val_{i}.JPEG\t{wnids[i % n_classes]}\t0\t0\t64\t64")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")


# the paper config at toy size, by overrides only: 1 epoch, 32 test images (n_train stays 0: all of the 40 written),
# batch 32 (and a PID projection small enough for it), 1 seed, the CPU in fp32 without torch.compile
TOY = dict(epochs=1, n_test=32, batch_size=32, pid_proj_dim=8, linear_epochs=1, semi_steps=2, semi_lrs="0.1", eval_every=0,
           checkpoint_every=1, compile=False, device="cpu", precision="fp32")


@pytest.mark.parametrize("name", ["paper_cifar10", "paper_cifar100", "paper_stl10", "paper_tinyimagenet"])
def test_paper_config_at_toy_size(name, tmp_path, monkeypatch, capfd):
    data = tmp_path / "data"
    write_cifar(data, "cifar10"); write_cifar(data, "cifar100"); write_stl10(data); write_tiny_imagenet(data / "tiny")
    monkeypatch.setenv("PID_SSL_DATA", str(data))  # where the loaders look when no root is given (the transfer sets)
    root = str(data / "tiny") if name == "paper_tinyimagenet" else str(data)
    toy = tmp_path / f"{name}.yaml"  # named as the paper config, so its runs go to runs/paper_*/ as for real
    toy.write_text(f"base: {ROOT / 'configs' / f'{name}.yaml'}\nparams: {json.dumps({**TOY, 'root': root})}\nseeds: [0]\n")
    results = tmp_path / "results"
    code = main([str(toy), "--results", str(results)])
    out, err = capfd.readouterr()
    assert code == 0, out[-6000:] + err[-3000:]
    runs = load_runs(results, name)
    arms = {m for m in METHODS if m not in ("vicreg_pid_red", "vicreg_pid_syn")}  # configs/methods.yaml's 12 arms
    assert len(runs) == len(arms) == 12 and set(runs.method) == arms
    want = dict(paper_cifar10=("cifar10", 32), paper_cifar100=("cifar100", 32), paper_stl10=("stl10", 96),
                paper_tinyimagenet=("imagefolder", 64))[name]
    assert set(runs.dataset) == {want[0]} and set(runs.image_size) == {want[1]} and set(runs.epochs) == {1}
    for m in ("linear_top1", "knn200_top1", "semi1_top1", "semi10_top1"):
        assert runs[m].between(0, 100).all(), m
    # CIFAR-10 and CIFAR-100 evaluate transfer to each other (the other set found through $PID_SSL_DATA); the others none
    assert ("transfer_linear_top1" in runs) == (name in ("paper_cifar10", "paper_cifar100"))
    assert "12 ran, 0 skipped, 0 failed" in out
    for t in ("table_c1_recalibration", "table_c2_protocol", "table_c3_downstream", "table_c4_pid"):
        assert (results / "tables" / name / f"{t}.md").is_file(), t
    for f in ("figure_accuracy", "figure_c4_pid_vs_accuracy", "figure_training_curves"):
        assert (results / "figures" / name / f"{f}.png").is_file(), f
