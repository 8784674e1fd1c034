"""One call that checks pid_ssl on an NVIDIA GPU and writes everything it measures as JSON to an output folder.

Stages (each in its own Python process, so one notebook's global settings never leak into the next stage):
  env        versions, GPU, which optional modules import
  notebooks  the code cells of every library notebook that has a `#| cuda` cell, in order, `slow` and
             `eval: false` cells skipped (cuda cells skipped too when --device cpu)
  bench      pid_ssl_bench (fit's step, Barlow Twins with its PID diagnostics) at each batch size: eager (both
             pipelines), then compiled (ours), at the fastest native precision; FLOPs per pair and the fraction of
             the GPU's dense bf16 peak
  pretrain   a short real Fashion-MNIST pretrain (python -m pid_ssl.train) to kNN accuracies

--smoke shrinks every stage so that the whole check runs on a CPU in about a minute (used by tests/test_bench.py).
Run it as `bash scripts/gpu_check.sh [options]` (sets PYTHONPATH, MPLBACKEND and the fastcore fallback).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_PAIRS_PER_S = 25_000  # one H200, batch 512, ResNet-18 at 32 px (the project's target)
DRY_RUN = False  # --dry-run: print the commands instead of running them
FMNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _has_fmnist(d: Path) -> bool:
    return all((d / f).is_file() or (d / f"{f}.gz").is_file() for f in FMNIST_FILES)


def find_fmnist(given: str | None) -> Path | None:
    "The first folder holding the four Fashion-MNIST IDX files (gzipped or not)."
    env = os.environ.get("PID_SSL_DATA")
    cands = ([Path(given)] if given else []) + ([Path(env) / "fashion-mnist"] if env else []) + \
        [REPO / "data" / "fashion-mnist", REPO / "data", Path("/usr/share/datasets/fashion-mnist")]
    return next((c.resolve() for c in cands if c.is_dir() and _has_fmnist(c)), None)


def _run(cmd, log: Path, timeout: float, env: dict) -> dict:
    "Run a command, its output teed into `log`; returns rc, seconds and the output's tail."
    t0 = time.time()
    if DRY_RUN:
        print("  [dry run]", " ".join(map(str, cmd)), flush=True)
        return dict(cmd=[str(c) for c in cmd], rc=0, seconds=0.0, log=None, tail="", dry_run=True)
    with open(log, "w") as f:
        try:
            p = subprocess.run(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=timeout)
            rc = p.returncode
        except subprocess.TimeoutExpired: rc = "timeout"
    tail = log.read_text()[-2500:]
    print(f"  [{'ok' if rc == 0 else 'FAILED rc=' + str(rc)}] {' '.join(map(str, cmd))[:160]} ({time.time() - t0:.0f} s)", flush=True)
    if rc != 0: print(tail, flush=True)
    return dict(cmd=[str(c) for c in cmd], rc=rc, seconds=round(time.time() - t0, 1), log=log.name, tail=tail if rc != 0 else "")


def stage_env(a, env) -> dict:
    code = ("import json, importlib, torch\n"
            "mods = {m: bool(importlib.util.find_spec(m)) for m in ('fastcore', 'nbformat', 'nbdev', 'scipy', 'sklearn', 'tqdm', 'yaml', 'seaborn', 'pandas', 'timm', 'torchvision')}\n"
            "cuda = torch.cuda.is_available()\n"
            "print(json.dumps(dict(torch=torch.__version__, cuda=torch.version.cuda, gpu=torch.cuda.get_device_name(0) if cuda else None,"
            " gpu_count=torch.cuda.device_count(), bf16=cuda and torch.cuda.is_bf16_supported(), modules=mods)))")
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    info = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else dict(error=p.stderr[-2000:])
    try: info["nvidia_smi"] = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError): info["nvidia_smi"] = None
    return info


def _smoke_notebook(out: Path) -> Path:
    "A three-cell notebook (plain, slow, cuda) that checks the cell runner itself, for --smoke."
    cells = [("import torch\nfrom fastcore.test import test_eq\nran = ['plain']\ntest_eq(torch.ones(2), torch.ones(2))", ""),
             ("ran.append('slow')", "#| slow\n"), ("ran.append('cuda'); assert torch.cuda.is_available()", "#| cuda\n"),
             ("#| eval: false\nran.append('eval')", ""), ("import json; json.dump(ran, open('smoke_cells.json', 'w'))", "")]
    nb = dict(cells=[dict(cell_type="code", metadata={}, outputs=[], execution_count=None, source=f + c) for c, f in cells],
              metadata={}, nbformat=4, nbformat_minor=5)
    p = out / "smoke.ipynb"; p.write_text(json.dumps(nb)); return p


def stage_notebooks(a, env, out: Path) -> dict:
    sys.path.insert(0, str(REPO / "scripts"))
    from nbcells import cell_flags, code_cells
    if a.notebooks: nbs = [REPO / n for n in a.notebooks.split(",")]
    elif a.smoke: nbs = [_smoke_notebook(out)]
    else: nbs = [n for n in sorted((REPO / "nbs").glob("*.ipynb")) if any("cuda" in cell_flags(c) for c in code_cells(n))]
    skip = "slow,eval:false" + (",cuda" if a.device == "cpu" else "")
    res = {}
    for nb in nbs:
        j = out / f"nb_{nb.stem}.json"
        r = _run([sys.executable, "scripts/nbcells.py", str(nb), "--skip", skip, "--json", str(j)],
                 out / f"nb_{nb.stem}.log", a.stage_timeout, env)
        r.update(json.loads(j.read_text())[0] if j.exists() else {})
        res[nb.stem] = r
    return res


def _bench_runs(a) -> list[tuple[str, list[str]]]:
    "(name, pid_ssl_bench arguments) of every benchmark run (the run's precision: 'auto', bf16 on recent GPUs)."
    if a.smoke:
        return [("smoke", ["--batch-size", "16", "--image-size", "8", "--steps", "1", "--repeats", "2", "--warmup", "1", "--workers", "0,1",
                           "--projector", "64-64", "--arch", "resnet10t", "--n-train", "64", "--pid-proj-dim", "4", "--precision", "fp32",
                           "--threads", "1", "--compile", "--compile-backend", "eager", "--no-breakdown"])]
    runs = []
    for b in a.batch_sizes: runs.append((f"b{b}", ["--batch-size", str(b)]))
    for b in a.compile_batch_sizes: runs.append((f"b{b}_compiled", ["--batch-size", str(b), "--compile", "--pipelines", "ours", "--no-breakdown"]))
    return runs


def stage_bench(a, env, out: Path) -> dict:
    res = {}
    for name, args in _bench_runs(a):
        j = out / f"bench_{name}" / "bench.json"
        r = _run([sys.executable, "-m", "pid_ssl.bench", "--device", a.device, *args, "--out-dir", str(out / f"bench_{name}")],
                 out / f"bench_{name}.log", a.stage_timeout, env)
        if j.exists():
            b = json.loads(j.read_text())
            r.update(ratio=b["ratio"], flops=b["flops"], peak_bf16_tflops=b["peak_bf16_tflops"], breakdown=b["breakdown"],
                     device_name=b["hardware"]["device_name"], method=b["config"]["method"],
                     rows=[{k: row[k] for k in ("pipeline", "precision", "workers", "compile", "median", "min", "max", "tflops",
                                                "peak_bf16_fraction", "target_pass_frac")} for row in b["results"]])
        res[name] = r
    for name, r in res.items():  # compiled runs time ours only: compare with the usual pipeline of the eager run (same precision)
        eager = res.get(name.removesuffix("_compiled"), {}) if name.endswith("_compiled") else {}
        usual = [x["median"] for x in eager.get("rows", []) if x["pipeline"] == "usual"]
        ours = [x["median"] for x in r.get("rows", []) if x["pipeline"] == "ours"]
        if usual and ours: r["ratio_vs_usual_of_eager_run"] = max(ours) / max(usual)
    rows = [dict(run=n, **row) for n, r in res.items() for row in r.get("rows", []) if row["pipeline"] == "ours"]
    if rows:
        best = max(rows, key=lambda r: r["median"])
        res["best_ours"] = dict(best, target_pairs_per_s=TARGET_PAIRS_PER_S,
                                target_met=None if a.smoke else best["median"] >= TARGET_PAIRS_PER_S)
    return res


def stage_pretrain(a, env, out: Path) -> dict:
    root = find_fmnist(a.fmnist_root)
    if root is None: return dict(rc="no data", error="Fashion-MNIST IDX files not found; pass --fmnist-root DIR (a folder with the four *-ubyte.gz files).")
    run_dir = out / "pretrain_fmnist"
    kw = dict(dataset="fashion_mnist", root=str(root), out_dir=str(run_dir), method="bt", epochs=a.pretrain_epochs,
              batch_size=512, linear_epochs=0, device=a.device, eval_every=0, seed=0)
    if a.smoke: kw.update(n_train=128, n_test=64, image_size=16, projector="64-64", batch_size=64, epochs=1, arch="resnet10t", pid_proj_dim=8)
    if a.device == "cpu": kw["precision"] = "fp32"  # bf16 autocast is emulated (slow) on CPUs without AVX512-BF16/AMX
    cmd = [sys.executable, "-m", "pid_ssl.train", "--no-progress"] + [f"--{k}={v}" for k, v in kw.items()]
    r = _run(cmd, out / "pretrain.log", a.stage_timeout, env)
    m = run_dir / "metrics.json"
    if m.exists():
        met = json.loads(m.read_text())
        r["metrics"] = {k: v for k, v in met.items() if not isinstance(v, (dict, list))}
    r["fmnist_root"], r["args"] = str(root), kw
    return r


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.environ.get("OUT") or "results/gpu_check", help="output folder (default: $OUT)")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --smoke, to test this script)")
    p.add_argument("--smoke", action="store_true", help="tiny everything: runs end to end on a CPU in about a minute")
    p.add_argument("--stages", default="env,notebooks,bench,pretrain", help="comma list of stages to run")
    p.add_argument("--notebooks", default="", help="comma list of notebooks (default: those with a #| cuda cell)")
    p.add_argument("--batch-sizes", default="256,512", help="benchmark batch sizes")
    p.add_argument("--compile-batch-sizes", default=None, help="batch sizes of the compiled runs (default: --batch-sizes; '' for none)")
    p.add_argument("--pretrain-epochs", type=int, default=10, help="Fashion-MNIST pretraining epochs (batch 512)")
    p.add_argument("--fmnist-root", default=None, help="folder with the Fashion-MNIST IDX .gz files (carried along)")
    p.add_argument("--stage-timeout", type=float, default=480, help="seconds allowed to each subprocess")
    p.add_argument("--dry-run", action="store_true", help="print the commands of the notebooks, bench and pretrain stages only")
    a = p.parse_args(argv)
    global DRY_RUN
    DRY_RUN = a.dry_run
    a.batch_sizes = [int(b) for b in a.batch_sizes.split(",") if b]
    a.compile_batch_sizes = a.batch_sizes if a.compile_batch_sizes is None else [int(b) for b in a.compile_batch_sizes.split(",") if b]
    out = Path(a.out).resolve(); out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO)] + [x for x in os.environ.get("PYTHONPATH", "").split(os.pathsep) if x]),
           "MPLBACKEND": "Agg"}
    if a.smoke: env["OMP_NUM_THREADS"] = "1"  # tiny ops: one thread each avoids OpenMP threads waiting on busy cores
    fm = find_fmnist(a.fmnist_root)
    if fm is not None:  # the loaders search $PID_SSL_DATA/fashion-mnist: point it at the files wherever they are
        link_root = Path(tempfile.mkdtemp(prefix="pid_ssl_data_")); (link_root / "fashion-mnist").symlink_to(fm)
        env["PID_SSL_DATA"] = str(link_root)
        usual = Path("/usr/share/datasets/fashion-mnist")  # a few notebook tests read the Debian package's path directly
        if not a.smoke and not a.dry_run and not usual.exists():
            try: usual.parent.mkdir(parents=True, exist_ok=True); usual.symlink_to(fm); print(f"linked {usual} -> {fm}")
            except OSError as e: print(f"could not link {usual} -> {fm} ({e}); notebook cells reading that path will fail")
    summary, t0 = dict(args=vars(a), fmnist=str(fm) if fm else None, stages={}), time.time()
    stages = dict(env=lambda: stage_env(a, env), notebooks=lambda: stage_notebooks(a, env, out),
                  bench=lambda: stage_bench(a, env, out), pretrain=lambda: stage_pretrain(a, env, out))
    for s in [s for s in a.stages.split(",") if s]:
        if s not in stages: raise SystemExit(f"unknown stage {s!r}; stages: {', '.join(stages)}")
        print(f"== {s}", flush=True); ts = time.time()
        try: summary["stages"][s] = stages[s]()
        except Exception as e:  # noqa: BLE001 - record and go on to the next stage
            summary["stages"][s] = dict(rc="error", error=f"{type(e).__name__}: {e}")
        summary["stages"][s]["stage_seconds"] = round(time.time() - ts, 1)
        summary["wall_s"] = round(time.time() - t0, 1)
        (out / "gpu_check.json").write_text(json.dumps(summary, indent=1, default=str))
    ok = _all_ok(summary["stages"])
    summary["ok"] = ok; (out / "gpu_check.json").write_text(json.dumps(summary, indent=1, default=str))
    best = summary["stages"].get("bench", {}).get("best_ours")
    if best:
        frac = "" if best["peak_bf16_fraction"] is None else f"{100 * best['peak_bf16_fraction']:.1f} % of the bf16 peak; "
        print(f"best ours: {best['median']:.0f} pairs/s ({best['run']}, {best['precision']}); {frac}"
              f"target {TARGET_PAIRS_PER_S} pairs/s: {({True: 'met', False: 'NOT met'}).get(best['target_met'], 'not checked (smoke)')}")
    pm = summary["stages"].get("pretrain", {}).get("metrics")
    if pm: print("pretrain:", {k: pm.get(k) for k in ("knn20_top1", "knn200_top1", "pairs_per_s", "pretrain_s")})
    print(f"{'OK' if ok else 'FAILED'}: {out / 'gpu_check.json'} ({summary['wall_s']} s)")
    return 0 if ok else 1


def _all_ok(stages: dict) -> bool:
    "Every subprocess of every stage returned 0."
    def rcs(d):
        if isinstance(d, dict):
            if "rc" in d: yield d["rc"]
            for v in d.values():
                if isinstance(v, dict): yield from rcs(v)
    return all(rc == 0 for rc in rcs(stages))


if __name__ == "__main__":
    sys.exit(main())
