"""Barlow Twins on real Fashion-MNIST images learns: kNN accuracy rises clearly above the same network at random init.

A short run sized for CI on 2 CPU cores: ResNet-10-T (small stem), 1 020 class-balanced training images at 28 px,
8 epochs at batch 64 (128 LARS steps), evaluated on 1 000 test images. Measured on the project's 2-core AMD EPYC:
kNN-20 64.5 % / kNN-200 50.5 % after training against 55.2 % / 36.0 % at random initialisation (about 5 minutes).
Random conv features are strong on Fashion-MNIST, so the margin asked for (5 points on both k) is a real bar: after
3 epochs (24 steps) the trained network was still *below* random init on kNN-20.
"""
import os

import pytest

FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


@pytest.mark.skipif(not os.path.exists(FMNIST), reason="needs `apt-get install -y dataset-fashion-mnist`")
def test_bt_beats_random_init_on_fashion_mnist(tmp_path):
    from pid_ssl.core import seed_everything
    from pid_ssl.data import load_dataset
    from pid_ssl.sampling import balanced_subset
    from pid_ssl.evaluate import extract_features, knn_classify
    from pid_ssl.backbones import build_net
    from pid_ssl.train import fit

    cfg = dict(dataset="fashion_mnist", n_train=1024, n_test=1000, image_size=28, arch="resnet10t",
               projector="512-512", method="bt", epochs=8, batch_size=64, lr=0.3, warmup_epochs=0.5,
               pid_proj_dim=16, linear_epochs=0, precision="fp32", device="cpu", progress=False, seed=0,
               eval_n_train=1024)  # the kNN bank: the same 1 020 class-balanced images as the random-init reference below
    trained = fit(out_dir=str(tmp_path / "bt"), **cfg)

    seed_everything(0)
    net = build_net("resnet10t", True, 1, 1, "512-512")
    x, y, meta = load_dataset("fashion_mnist")
    idx = balanced_subset(y, per_class=1024 // 10, seed=0)
    xt, yt, _ = load_dataset("fashion_mnist", train=False)
    f = extract_features(net.backbone, x[idx], meta["mean"], meta["std"])
    ft = extract_features(net.backbone, xt[:1000], meta["mean"], meta["std"])
    random_init = knn_classify(f, y[idx], ft, yt[:1000], ks=(20, 200))
    print({k: (random_init[k], trained[k]) for k in random_init})
    for k in ("knn20_top1", "knn200_top1"):
        assert trained[k] >= random_init[k] + 5.0, (k, trained[k], random_init[k])
