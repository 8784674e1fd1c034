"""The benchmark's command line and the GPU check script, run small on the CPU.

`scripts/gpu_check.sh --smoke --device cpu` runs every stage of the GPU check (notebook cells, benchmark with and
without torch.compile, a Fashion-MNIST pretrain) shrunk to about a minute; `pid_ssl_bench` runs both pipelines.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HANG_S

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
sys.path.insert(0, str(REPO / "scripts"))


def test_gpu_check_smoke(tmp_path):
    p = subprocess.run(["bash", "scripts/gpu_check.sh", "--smoke", "--device", "cpu", "--out", str(tmp_path),
                        "--stage-timeout", str(HANG_S)], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=4 * HANG_S)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    s = json.loads((tmp_path / "gpu_check.json").read_text())
    assert s["ok"] and list(s["stages"]) == ["env", "notebooks", "bench", "pretrain"]
    assert s["stages"]["env"]["torch"] and s["stages"]["env"]["modules"]["timm"]
    nb = s["stages"]["notebooks"]["smoke"]
    assert nb["rc"] == 0 and (nb["run"], nb["skipped"]) == (2, 3)  # plain cells ran; slow, cuda, eval: false skipped
    assert json.loads((tmp_path / "smoke_cells.json").read_text()) == ["plain"]
    b = s["stages"]["bench"]["smoke"]
    assert b["rc"] == 0 and (tmp_path / "bench_smoke" / "bench.png").exists()
    assert {(r["pipeline"], r["compile"], r["workers"]) for r in b["rows"]} == {("ours", True, None), ("usual", False, 0), ("usual", False, 1)}
    assert b["ratio"]["ratio"] > 0 and b["flops"]["train_per_pair"] > 0 and all(r["target_pass_frac"] == 1 for r in b["rows"])
    best = s["stages"]["bench"]["best_ours"]
    assert best["pipeline"] == "ours" and best["target_met"] is None
    m = s["stages"]["pretrain"]["metrics"]
    assert s["stages"]["pretrain"]["rc"] == 0 and 0 <= m["knn200_top1"] <= 100 and m["dataset"] == "fashion_mnist"


BENCH = [sys.executable, "-c", "import sys; from pid_ssl.commands import bench_main; sys.exit(bench_main())"]  # the console script
TINY = ["--device", "cpu", "--batch-size", "16", "--image-size", "8", "--projector", "32-32", "--arch", "resnet10t", "--n-train", "64",
        "--pid-proj-dim", "4", "--precision", "fp32", "--threads", "1"]


def test_bench_cli(tmp_path):
    "pid_ssl_bench times fit's step of a _pid method in both pipelines and writes --out-dir/bench.json and bench.png."
    out = tmp_path / "out"
    p = subprocess.run(BENCH + TINY + ["--method", "bt_pid", "--steps", "1", "--repeats", "2", "--warmup", "1", "--workers", "0", "1",
                                       "--out-dir", str(out)], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=HANG_S)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "ours / usual" in p.stdout and "pairs/s (median)" in p.stdout and "redundancy" in p.stdout
    r = json.loads((out / "bench.json").read_text())
    assert (out / "bench.png").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing else written
    assert r["hardware"]["cpu_model"] and r["hardware"]["packages"]["torch"] and r["config"]["method"] == "bt_pid"
    assert [(x["pipeline"], x["workers"]) for x in r["results"]] == [("ours", None), ("usual", 0), ("usual", 1)]
    assert all(len(x["pairs_per_s"]) == 2 and x["terms"]["pid_grad_share"] > 0 for x in r["results"])
    best_usual = max(x["median"] for x in r["results"] if x["pipeline"] == "usual")
    assert r["ratio"]["ratio"] == pytest.approx(r["results"][0]["median"] / best_usual)
    assert r["breakdown"]["step_s"] > 0 and r["threads"] == 1 and r["options"]["workers"] == [0, 1]


def test_bench_writes_nothing_unless_asked(tmp_path):
    "Without --out-dir the benchmark prints and writes nothing, wherever it runs."
    p = subprocess.run(BENCH + TINY + ["--pipelines", "ours", "--steps", "1", "--repeats", "1", "--no-breakdown"],
                       cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=HANG_S)
    assert p.returncode == 0 and "pairs/s (median)" in p.stdout, p.stderr[-3000:]
    assert list(tmp_path.iterdir()) == []


def test_console_scripts_are_torch_free():
    "settings.ini's console scripts for the two commands are the torch-free entry points of pid_ssl.commands."
    import configparser
    ini = configparser.ConfigParser(); ini.read(REPO / "settings.ini")
    scripts = dict(s.split("=") for s in ini["DEFAULT"]["console_scripts"].split())
    assert scripts["pid_ssl_train"] == "pid_ssl.commands:train_main" and scripts["pid_ssl_bench"] == "pid_ssl.commands:bench_main"
    for cmd in ("train", "bench"):
        code = (f"import sys; from pid_ssl.commands import {cmd}_main\ntry: {cmd}_main(['--help'])\nexcept SystemExit as e: assert e.code == 0\n"
                "assert 'torch' not in sys.modules")
        p = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=HANG_S)
        assert p.returncode == 0 and "examples:" in p.stdout and "(default: None)" not in p.stdout, p.stderr


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
    "A bad value is one line on stderr and exit status 2, with or without torch loaded; --debug shows the traceback."
    for cmd in (BENCH, [sys.executable, "-m", "pid_ssl.bench"]):
        p = subprocess.run(cmd + ["--device", "cpu", "--precision", "fp16"], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=HANG_S)
        assert (p.returncode, p.stdout) == (2, ""), p.stderr[-3000:]
        assert p.stderr == "pid_ssl_bench: error: command line: precision = 'fp16' is not one of 'auto', 'bf16', 'fp32' (did you mean 'bf16'?)\n", p.stderr
    p = subprocess.run(BENCH + ["--device", "cpu", "--precision", "fp16", "--debug"], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=HANG_S)
    assert p.returncode == 1 and "Traceback (most recent call last)" in p.stderr and "fp16" in p.stderr
    p = subprocess.run(BENCH + ["--workers", "0,x"], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=HANG_S)
    assert p.returncode == 2 and "argument --workers: 'x' is not a valid int" in p.stderr, p.stderr
    assert list(tmp_path.iterdir()) == []
