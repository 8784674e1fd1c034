"""The benchmark's command line and the GPU check script, run small on the CPU.

`scripts/gpu_check.sh --smoke --device cpu` runs every stage of the GPU check (notebook cells, benchmark with and
without torch.compile, a Fashion-MNIST pretrain) shrunk to about a minute; `pid_ssl_bench` runs both pipelines.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
sys.path.insert(0, str(REPO / "scripts"))


def test_gpu_check_smoke(tmp_path):
    p = subprocess.run(["bash", "scripts/gpu_check.sh", "--smoke", "--device", "cpu", "--out", str(tmp_path)],
                       cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    s = json.loads((tmp_path / "gpu_check.json").read_text())
    assert s["ok"] and list(s["stages"]) == ["env", "notebooks", "bench", "pretrain"]
    assert s["stages"]["env"]["torch"] and s["stages"]["env"]["modules"]["timm"]
    nb = s["stages"]["notebooks"]["smoke"]
    assert nb["rc"] == 0 and (nb["run"], nb["skipped"]) == (2, 3)  # plain cells ran; slow, cuda, eval: false skipped
    assert json.loads((tmp_path / "smoke_cells.json").read_text()) == ["plain"]
    b = s["stages"]["bench"]["smoke"]
    assert b["rc"] == 0 and (tmp_path / "bench_smoke.png").exists()
    assert {(r["pipeline"], r["compile"], r["workers"]) for r in b["rows"]} == {("ours", True, None), ("usual", False, 0), ("usual", False, 1)}
    assert b["ratios"]["default"]["ratio"] > 0 and b["flops"]["train_per_pair"] > 0
    best = s["stages"]["bench"]["best_ours"]
    assert best["pipeline"] == "ours" and best["target_met"] is None
    m = s["stages"]["pretrain"]["metrics"]
    assert s["stages"]["pretrain"]["rc"] == 0 and 0 <= m["knn200_top1"] <= 100 and m["dataset"] == "fashion_mnist"


def test_bench_cli(tmp_path):
    exe = shutil.which("pid_ssl_bench")
    cmd = [exe] if exe else [sys.executable, "-m", "pid_ssl.bench"]
    out, fig = tmp_path / "b.json", tmp_path / "b.png"
    p = subprocess.run(cmd + ["--device", "cpu", "--batch-size", "4", "--image-size", "8", "--steps", "1", "--repeats", "2",
                              "--warmup", "1", "--workers", "0,1", "--precision", "fp32", "--projector", "32-32", "--arch",
                              "resnet10t", "--n-images", "32", "--threads", "1", "--out", str(out), "--figure", str(fig)],
                       cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "equal precision fp32" in p.stdout and "pairs/s (median)" in p.stdout
    r = json.loads(out.read_text())
    assert fig.exists() and r["hardware"]["cpu_model"] and r["hardware"]["packages"]["torch"]
    assert {x["pipeline"] for x in r["results"]} == {"ours", "usual"} and all(len(x["pairs_per_s"]) == 2 for x in r["results"])
    best_usual = max(x["median"] for x in r["results"] if x["pipeline"] == "usual")
    ours = next(x["median"] for x in r["results"] if x["pipeline"] == "ours")
    assert r["ratios"]["default"]["ratio"] == pytest.approx(ours / best_usual)
    assert r["ratios"]["equal_precision"]["fp32"]["ratio"] == pytest.approx(ours / best_usual)
    assert r["breakdown"]["model_step_s"] > 0 and r["args"]["threads"] == 1


def test_nbcells(tmp_path):
    from nbcells import cell_flags, run_notebook
    assert cell_flags("#| slow\n#| eval: false\nx = 1\n#| cuda") == {"slow", "eval:false"}
    assert cell_flags("\n#|cuda\n# a comment\nx") == {"cuda"} and cell_flags("x = 1") == set()
    cell = lambda src: dict(cell_type="code", metadata={}, outputs=[], source=src)
    nb = dict(cells=[cell(["x = [1]\n", "%time y = 2\n"]), dict(cell_type="markdown", metadata={}, source="# t"),
                     cell("#| slow\nx.append(2)"), cell("x.append(3)\nassert x == [1, 3], x"), cell("1 / 0"), cell("x.append(5)")],
              metadata={}, nbformat=4, nbformat_minor=5)
    (tmp_path / "t.ipynb").write_text(json.dumps(nb))
    r = run_notebook(tmp_path / "t.ipynb", verbose=False)
    assert not r["ok"] and (r["run"], r["skipped"]) == (2, 1) and "cell 3" in r["error"] and "ZeroDivisionError" in r["error"]


def test_bench_user_error(tmp_path):
    "A bad value is one line on stderr and exit status 2; --debug shows the traceback."
    p = subprocess.run([sys.executable, "-m", "pid_ssl.bench", "--device", "cpu", "--precision", "fp16", "--figure", ""],
                       cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert (p.returncode, p.stdout) == (2, ""), p.stderr[-3000:]
    assert p.stderr.startswith("pid_ssl_bench: error: precision 'fp16' is not 'fp32' or 'bf16'") and p.stderr.count("\n") == 1, p.stderr
    p = subprocess.run([sys.executable, "-m", "pid_ssl.bench", "--device", "cpu", "--precision", "fp16", "--figure", "", "--debug"],
                       cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "Traceback (most recent call last)" in p.stderr and "fp16" in p.stderr
