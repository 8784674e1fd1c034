"""A committed run's metrics are reproducible from its committed backbone: `reevaluate` (what
`pid_ssl_reproduce CONFIG --reevaluate` runs) on a copy of a demo run gives every metric exactly, timing aside, on the
CPU kernel path that computed them (`DEMO_PATH`), and within the stated tolerances (`DEMO_RULES`) on another one.

This guards the evaluation itself: a change to any evaluation code (BatchNorm re-estimation, kNN, probes, semi-supervised
fine-tuning, label information) shows here as a changed number. The demo's runs use the cpu study's network and
evaluation protocol on Fashion-MNIST (about 40 s of evaluation on 2 threads).
"""
import json
import shutil
from pathlib import Path

import pytest

from pins import Rule, accuracy_images, check

from pid_ssl.data import DataNotFound, load_dataset
from pid_ssl.train import TIMING_KEYS, reevaluate

RUN = Path(__file__).resolve().parents[1] / "results" / "runs" / "demo" / "bt_pid-s0"
# the demo's kernel path: its env.json names AVX512 and torch 2.14.1 on an AMD EPYC whose torch is 2.14.1+cu130, and
# no library capped (written before env.json recorded `kernel_path`; a run's own record is used where it has one)
DEMO_PATH = "x86_64 ATen AVX512 oneDNN AVX512 MKL AVX512 torch 2.14.1+cu130"
DEMO_RULES = "filled below"


def _have_fashion_mnist() -> bool:
    try: load_dataset("fashion_mnist", train=False, n=1); return True
    except DataNotFound: return False


@pytest.mark.skipif(not _have_fashion_mnist(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_committed_demo_run_reevaluates_exactly(tmp_path):
    run = shutil.copytree(RUN, tmp_path / RUN.name)
    old = json.loads((run / "metrics.json").read_text())
    new = reevaluate(run, device="cpu")
    path = json.loads((RUN / "env.json").read_text()).get("kernel_path", DEMO_PATH)
    check(old, new, path, DEMO_RULES, lambda k: accuracy_images(k, old), skip=TIMING_KEYS)
    assert len(old) > 60 and "label_vi_joint" in old and "semi10_top1" in old  # the present protocol's metrics, all compared


@pytest.mark.parametrize("config", ["demo", "cpu"])
def test_committed_study_is_its_config(config):
    """Every run a study's config plans is committed, finished with the configuration the config asks for now (not stale),
    and its backbone matches its checksum; no run folder is committed that the config does not plan. An edit to the
    config that would change a run shows here as a stale run, before anyone reads the tables as the config's."""
    from pid_ssl.reproduce import prepare
    from pid_ssl.rundir import load_backbone
    plan = prepare(config)
    planned = {r.run_id: r for r in plan.runs}
    folder = Path(__file__).resolve().parents[1] / "results" / "runs" / config
    committed = {d.name for d in folder.iterdir() if d.is_dir()}
    assert committed - set(planned) == set(), f"run folders {config} does not plan: {sorted(committed - set(planned))}"
    not_done = {k: r.state for k, r in planned.items() if r.state != "finished"}
    assert not_done == {}, {k: (v, planned[k].stale_keys() if v == "stale" else None) for k, v in not_done.items()}
    for r in plan.runs:
        bb, cfg = load_backbone(r.out_dir)  # BackboneFileError unless its tensors match the checksum written with them
        assert cfg["arch"] == r.config.arch and sum(p.numel() for p in bb.parameters()) > 0
