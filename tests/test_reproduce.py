"""The batch runner `pid_ssl_reproduce` end to end on the smoke config: real runs of nbs/experiments/pretrain.ipynb
(pid_ssl.train.fit) and the paper notebooks into a temporary results folder, skipping of finished runs, and the
refusals that must happen before anything runs. Needs a Jupyter kernel named python3
(`python -m ipykernel install --user` when `jupyter kernelspec list` lacks it).
"""
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HANG_S

from pid_ssl.config import RunConfig
from pid_ssl.study import resolve_run
from pid_ssl.reproduce import main, notebook_params, prepare, repo_dir, run_notebook
from pid_ssl.results import load_history, load_runs

ROOT = Path(__file__).resolve().parents[1]
SMOKE_RUNS = ["bt-s0", "bt-s1", "bt_pid-s0", "bt_pid-s1"]
TABLES = ["table_c1_recalibration", "table_c3_downstream", "table_c3_ranking", "table_c4_pid", "table_c4_estimators", "table_c4_spearman",
          "table_views"]  # smoke has no _staged, _recal or random-init runs: no C2, mechanism or trained-vs-random table
FIGURES = ["figure_accuracy", "figure_c4_pid_vs_accuracy", "figure_training_curves"]


def test_paper_recipe_resolves_identically_everywhere(tmp_path):
    "The paper recipe's bt run, seed 1, through the runner, the Python API, `pid_ssl_train` and the notebook: one RunConfig."
    plan = prepare("paper_cifar10", results=tmp_path)
    run = next(r for r in plan.runs if r.run_id == "bt-s1")
    out = str(run.out_dir)
    api = resolve_run("paper_cifar10", "bt", seed=1, out_dir=out)
    cli = subprocess.run([sys.executable, "-m", "pid_ssl.train", "--config", "paper_cifar10", "--setting", "bt", "--seed", "1",
                          "--out-dir", out, "--print-config"], capture_output=True, text=True, check=True)
    executed = tmp_path / "dry.ipynb"
    run_notebook(ROOT / "nbs" / "experiments" / "pretrain.ipynb", executed,
                 dict(config="paper_cifar10", setting="bt", seed=1, out_dir=out, dry_run=True))
    cells = json.loads(executed.read_text())["cells"]
    printed = [o["text"] for c in cells for o in c.get("outputs", []) if o.get("name") == "stdout" and "{" in "".join(o["text"])]
    nb_cfg = RunConfig(**json.loads("".join(printed[0]).split("\n", 1)[1]))
    assert run.config == api == RunConfig(**json.loads(cli.stdout)) == nb_cfg
    assert (api.pid_proj_dim, api.bt_lambda, api.projector, api.epochs, api.seed) == (64, 0.0051, "2048-2048-2048", 1000, 1)
    assert set(notebook_params(ROOT / "nbs" / "experiments" / "pretrain.ipynb")) == {"config", "setting", "seed", "out_dir", "overrides", "dry_run"}
    assert repo_dir() == ROOT


def test_smoke_end_to_end(tmp_path, capfd):
    "The smoke config: 4 real runs and the paper notebooks; then a rerun skips them all (one test: one smoke run per worker)."
    results = tmp_path / "results"
    code = main(["smoke", "--results", str(results)])
    out, err = capfd.readouterr()  # at the file-descriptor level: what the kernels write to the terminal too
    assert code == 0, out + err
    # the user sees the runner's progress lines and nothing else: not the kernel's 'running over TCP without
    # encryption' warning (one per notebook before), nor any other third-party noise
    assert err == "", err[-3000:]
    runs = load_runs(results, "smoke")
    assert sorted(runs.run_id) == SMOKE_RUNS
    assert set(runs.method) == {"bt", "bt_pid"} and set(runs.seed) == {0, 1}
    for rid in SMOKE_RUNS:
        d = results / "runs" / "smoke" / rid
        for f in ("params.json", "env.json", "history.jsonl", "metrics.json", "executed.ipynb", "backbone.safetensors"):
            assert (d / f).is_file(), (rid, f)
    # the config's values reached fit: params.json records them
    args = json.loads((results / "runs" / "smoke" / "bt_pid-s1" / "params.json").read_text())["args"]
    assert (args["method"], args["seed"], args["n_train"], args["image_size"], args["out_dir"]) == \
           ("bt_pid", 1, 128, 16, str(results / "runs" / "smoke" / "bt_pid-s1"))
    assert 0 <= runs.linear_top1.min() and runs.linear_top1.max() <= 100
    assert len(load_history(results, "smoke")) == 4  # one epoch each
    # progress lines: done / total, elapsed, estimate of what is left
    assert "[1/4] bt-s0 done in " in out and "left" in out and "[4/4] bt_pid-s1 done in " in out
    assert "4 ran, 0 skipped, 0 failed" in out
    for name in TABLES:
        for ext in ("csv", "md", "tex"):
            assert (results / "tables" / "smoke" / f"{name}.{ext}").is_file(), (name, ext)
    assert "bt_pid" in (results / "tables" / "smoke" / "table_c1_recalibration.md").read_text()
    assert not (results / "tables" / "smoke" / "table_c2_protocol.csv").exists()
    assert not (results / "tables" / "smoke" / "table_mechanism.csv").exists()
    for name in FIGURES:
        for ext in ("png", "pdf"):
            assert (results / "figures" / "smoke" / f"{name}.{ext}").stat().st_size > 1000, (name, ext)

    # a rerun skips every finished run and leaves it untouched; the paper notebooks rewrite every table and figure
    # byte for byte (what a rerun of the main job on a fresh clone must do to the committed results)
    metrics = results / "runs" / "smoke" / "bt-s0" / "metrics.json"
    before = metrics.stat().st_mtime_ns
    outputs = sorted(p for d in ("tables", "figures") for p in (results / d / "smoke").iterdir() if p.suffix != ".ipynb")
    first = {p.name: p.read_bytes() for p in outputs}
    assert main(["smoke", "--results", str(results)]) == 0
    out = capfd.readouterr().out
    assert "0 ran, 4 skipped, 0 failed" in out and "running" not in out
    assert metrics.stat().st_mtime_ns == before
    assert {p.name: p.read_bytes() for p in outputs} == first

    # --reevaluate trains nothing and recomputes every run's metrics from its saved backbone: the same numbers
    from pid_ssl.train import TIMING_KEYS
    untimed = lambda rid: {k: v for k, v in json.loads((results / "runs" / "smoke" / rid / "metrics.json").read_text()).items() if k not in TIMING_KEYS}
    written = {rid: untimed(rid) for rid in SMOKE_RUNS}
    ckpt = (results / "runs" / "smoke" / "bt-s0" / "checkpoint.pt").stat().st_mtime_ns
    assert main(["smoke", "--results", str(results), "--reevaluate", "--no-paper"]) == 0
    out = capfd.readouterr().out
    assert "4 re-evaluated, 0 skipped, 0 failed" in out and "running" not in out, out
    assert {rid: untimed(rid) for rid in SMOKE_RUNS} == written
    assert (results / "runs" / "smoke" / "bt-s0" / "checkpoint.pt").stat().st_mtime_ns == ckpt  # nothing trained

    # against finished runs a dry run says what it would skip; --only and --seeds select
    assert main(["smoke", "--dry-run", "--results", str(results), "--only", "bt_pid", "--seeds", "1", "5"]) == 0
    out = capfd.readouterr().out
    assert "  skip bt_pid-s1" in out and "  run  bt_pid-s5" in out and "bt-s0" not in out
    assert not (results / "runs" / "smoke" / "bt_pid-s5").exists()


def test_paper_notebooks_take_their_output_folder():
    "Every paper notebook declares results_dir, config and out_dir ('' by default: the layout's folder), so the runner can pass any of them."
    import papermill as pm
    for nb in sorted((ROOT / "nbs" / "paper").glob("*.ipynb")):
        params = pm.inspect_notebook(str(nb))
        assert {"results_dir", "config", "out_dir"} <= set(params), nb.name
        assert params["out_dir"]["default"] in ('""', "''"), (nb.name, params["out_dir"])


def test_cpu_only_paper_notebooks_on_example_runs(tmp_path):
    "The dose-response and protocol-change notebooks (cpu's paper list only, so never run by the smoke test) on example runs with the present keys."
    import pandas as pd
    from pid_ssl.results import write_example_runs
    results, out = tmp_path / "results", tmp_path / "out"
    write_example_runs(results, "ex")
    old = load_runs(results, "ex")[["setting", "seed", "linear_top1", "knn20_top1"]].assign(linear_top1=lambda d: d.linear_top1 - 1)
    old.to_csv(tmp_path / "old.csv", index=False)
    for name, extra in (("table_dose_response", {}), ("figure_dose_response", {}), ("table_protocol_change", dict(old_metrics=str(tmp_path / "old.csv")))):
        run_notebook(ROOT / "nbs" / "paper" / f"{name}.ipynb", tmp_path / f"{name}.ipynb",
                     dict(results_dir=str(results), config="ex", out_dir=str(out), **extra))
    dose = pd.read_csv(out / "table_dose_response.csv")
    assert len(dose) == 2 * 5 * 2 and sorted(set(dose.share)) == [0, 0.05, 0.2, 0.5, 1.0]  # 2 families x 5 shares x 2 accuracies
    change = pd.read_csv(out / "table_protocol_change.csv")
    assert set(change.metric) == {"linear_top1", "knn20_top1"} and len(change) == 2 * len(set(old.setting))  # old settings, dose ones too
    main = change[~change.setting.str.contains("_pid_s")]  # the dose settings are no main settings: no new value, no change
    assert (main.change - main.metric.map(dict(linear_top1=1.0, knn20_top1=0.0))).abs().max() < 1e-9 and change.change.isna().sum() == 12
    assert all((out / f"figure_dose_response.{e}").stat().st_size > 1000 for e in ("png", "pdf"))
    assert not (results / "tables").exists() and not (results / "figures").exists()  # out_dir wins over the layout's folders


def test_estimation_notebooks_on_example_runs(tmp_path):
    "The estimation tables and the two forest plots (cpu's paper list) on example runs laid out as the cpu study: every planned contrast, intervals that hold the estimate."
    import pandas as pd
    from pid_ssl.results import write_example_runs
    from pid_ssl.report.statistics import analysis_plan
    results, out = tmp_path / "results", tmp_path / "out"
    write_example_runs(results, "cpu")
    for name in ("table_estimates", "figure_contrasts", "figure_manipulation"):
        run_notebook(ROOT / "nbs" / "paper" / f"{name}.ipynb", tmp_path / f"{name}.ipynb", dict(results_dir=str(results), config="cpu", out_dir=str(out)))
    plan = analysis_plan("cpu")
    con = pd.read_csv(out / "table_contrasts.csv")
    metrics = [m for m in plan["metrics"] if m in load_runs(results, "cpu")]
    assert len(con) == sum(map(len, plan["contrasts"].values())) * len(metrics)
    assert ((con.lo <= con.delta) & (con.delta <= con.hi) & (con.lo <= con.lo_tost) & (con.hi_tost <= con.hi)).all()
    assert set(con.verdict) <= {"higher", "lower", "inconclusive"} | {f"{s}within ±{plan['margin']:g}" for s in ("", "higher, ", "lower, ")}
    for t in ("table_seed_effect", "table_headline", "table_power", "table_vs_random"): assert (out / f"{t}.md").stat().st_size > 100, t
    assert (out / "figure_contrasts.png").stat().st_size > 1000
    assert not (results / "tables").exists() and not (results / "figures").exists()


def test_dry_run_writes_nothing(tmp_path, capsys):
    assert main(["smoke", "--dry-run", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert [l.split()[1] for l in out.splitlines() if l.strip().startswith("run ")] == ["bt-s0", "bt_pid-s0", "bt-s1", "bt_pid-s1"]
    assert list(tmp_path.iterdir()) == []


def test_dry_run_of_a_finished_config_is_quick():
    """`pid_ssl_reproduce demo --dry-run` over the committed demo runs (all finished): no torch, no timm, a few seconds.
    It took 13-24 s when every run's backbone was built to check it (torch + timm + torchvision imports); about 2 s
    after, on this shared 2-core machine under load. The bound is generous for a loaded machine."""
    code = ("import sys, time; t = time.perf_counter()\nfrom pid_ssl.reproduce import main\nrc = main(['demo', '--dry-run'])\n"
            "print(repr((rc, 'torch' in sys.modules, 'timm' in sys.modules, time.perf_counter() - t)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    rc, torch_loaded, timm_loaded, secs = eval(r.stdout.splitlines()[-1])
    assert "demo: 6 runs, 0 to run, 6 finished (skipped)" in r.stdout, r.stdout + r.stderr
    assert (rc, torch_loaded, timm_loaded) == (0, False, False), r.stdout
    assert secs < 10, f"dry run took {secs:.1f} s"


def _config(tmp_path, text):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"base: {ROOT / 'configs' / 'smoke.yaml'}\n{text}")
    return cfg


def test_misspelt_parameter_refused(tmp_path, capsys):
    cfg = _config(tmp_path, "settings:\n  bt_pid: {method: bt_pid, lrr: 0.1}\n")
    assert main([str(cfg), "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}, settings.bt_pid: unknown parameter 'lrr' (did you mean 'lr'?)" in err
    assert "nothing was run" in err and "Valid parameters:" in err and "weight_decay" in err
    assert not (tmp_path / "results").exists()


def test_mistyped_value_refused(tmp_path, capsys):
    cfg = _config(tmp_path, "params:\n  epochs: ten\n  lr: 1e-1\n  small_stem: 1\n")
    assert main([str(cfg), "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}, params: epochs = 'ten' is a str; epochs is `int`" in err
    assert "small_stem = 1 is a int; small_stem is `bool`" in err
    assert "lr =" not in err  # 1e-1 reads as a float: accepted
    assert not (tmp_path / "results").exists()


BAD_VALUES = {  # one bad value of each kind: (the setting's parameters, what the refusal says)
    "choice": ("method: bt_pdi", "method = 'bt_pdi' is not one of"),
    "precision": ("precision: fp16", "precision = 'fp16' is not one of 'auto', 'bf16', 'fp32'"),
    "list of numbers": ("semi_fractions: 'O.01'", "semi_fractions = 'O.01' must be comma-separated floats"),
    "list of ints": ("knn_k: x", "knn_k = 'x' must be comma-separated ints"),
    "list range": ("knn_k: '0'", "knn_k = '0' values must be >= 1"),
    "transfer dataset": ("transfer: nope", "transfer = 'nope' must be empty or one of"),
    "negative count": ("n_test: -5", "n_test = -5 must be >= 0"),
    "fraction": ("ema_momentum: 2.0", "ema_momentum = 2.0 must be <= 1"),
    "image size": ("image_size: 1", "image_size = 1 must be >= 8"),
    "JSON": ("backbone_kwargs: '{channels: 1}'", "backbone_kwargs = '{channels: 1}' must be a JSON object"),
    "timm keyword": ("backbone_kwargs: '{\"chanels\": [8, 16, 32, 64]}'", "unexpected keyword argument 'chanels'"),
    "architecture": ("arch: resnet1800", "Unknown timm architecture 'resnet1800'"),
    "weight of a missing term": ("beta: 0.1", "'bt' trains without the redundancy term"),
    "combination": ("pid_proj_dim: 32", "pid_proj_dim=32 is too large for batch_size=64"),
    "stage fraction": ("stage1_frac: 1.5", "stage1_frac = 1.5 must be <= 1"),
}


@pytest.mark.parametrize("kind", list(BAD_VALUES))
def test_bad_value_of_each_kind_refused_before_anything_runs(kind, tmp_path, capsys):
    "Every value the training or evaluation would refuse is refused by --dry-run: exit 2, the file, the setting, the key."
    values, says = BAD_VALUES[kind]
    method = "" if values.startswith("method:") else "method: bt, "  # a key given twice is refused (test_faults.py)
    cfg = _config(tmp_path, f"settings:\n  bt: {{{method}{values}}}\n  bt_pid: null\n")
    assert main([str(cfg), "--dry-run", "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pid_ssl_reproduce: error: ") and says in err and f"{cfg}, settings.bt" in err, err
    assert not (tmp_path / "results").exists()


def test_unknown_config_and_setting(tmp_path, capsys):
    assert main(["smok", "--results", str(tmp_path)]) == 2
    assert "did you mean 'smoke'?" in capsys.readouterr().err
    assert main(["smoke", "--only", "bt_pdi", "--results", str(tmp_path)]) == 2
    assert "did you mean 'bt_pid'?" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["methods", "smoke", "demo", "cpu", "cpu_pilot_t1", "cpu_pilot_t2", "paper_cifar10", "paper_cifar100", "paper_stl10",
                                  "paper_tinyimagenet"])
def test_every_config_is_valid(name, tmp_path, capsys):
    "Every shipped config passes the checks (dry run: nothing runs)."
    assert main([name, "--dry-run", "--results", str(tmp_path)]) == 0, capsys.readouterr().err


def test_sigterm_leaves_runs_resumable(tmp_path):
    "SIGTERM to a real `pid_ssl_reproduce` mid-run: status 130, a line saying how to go on; the same command resumes the run."
    import os, signal, time
    from pid_ssl.lock import lock_holder
    cfg = tmp_path / "long.yaml"  # the smoke wiring, 3 epochs: room to stop it between checkpoints
    cfg.write_text(f"base: {ROOT / 'configs' / 'smoke.yaml'}\nparams: {{epochs: 3}}\nsettings: {{bt_pid: null}}\nseeds: [0]\n")
    results = tmp_path / "results"; run = results / "runs" / "long" / "bt-s0"
    args = [str(cfg), "--results", str(results), "--no-paper"]
    cmd = [sys.executable, "-m", "pid_ssl.reproduce", *args]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    t0 = time.time()
    while not (run / "checkpoint.pt").exists() and p.poll() is None and time.time() - t0 < HANG_S: time.sleep(0.02)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=HANG_S)
    assert p.returncode == 130, out + err
    assert not (run / "metrics.json").exists()
    assert err == f"pid_ssl_reproduce: interrupted. Finished runs are kept and an unfinished one resumes from its last " \
                  f"checkpoint: run `pid_ssl_reproduce {' '.join(args)}` again to go on.\n", err
    t0 = time.time()  # the run's kernel ends with the runner, and with it the run folder's lock
    while lock_holder(run) is not None and time.time() - t0 < HANG_S: time.sleep(0.1)
    assert lock_holder(run) is None
    again = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=HANG_S)
    assert again.returncode == 0 and "1 ran, 0 skipped, 0 failed" in again.stdout, again.stdout + again.stderr
    assert "resumed from" in (run / "executed.ipynb").read_text()
    assert len(load_history(results, "long")) == 3


def test_set_override_refused_before_anything_runs(tmp_path, capsys):
    "--set values are checked like the config's own (same messages), all at once, exit 2, nothing written."
    results = tmp_path / "results"
    assert main(["smoke", "--set", "epochs=ten", "--set", "lrr=0.1", "--set", "seed=3", "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pid_ssl_reproduce: error: ") and "cannot run as written (nothing was run)" in err, err
    assert "--set: epochs = 'ten' is a str; epochs is `int`" in err and "--set: unknown parameter 'lrr' (did you mean 'lr'?)" in err
    assert "--set: remove 'seed'" in err
    assert main(["smoke", "--dry-run", "--set", "pid_proj_dim=40", "--results", str(results)]) == 2  # a combination, as in a config
    assert "pid_proj_dim=40 is too large for batch_size=64" in capsys.readouterr().err
    assert main(["smoke", "--dry-run", "--set", "epochs", "--results", str(results)]) == 2
    assert "--set epochs: write KEY=VALUE" in capsys.readouterr().err
    assert not results.exists()


def test_set_override_recorded_in_its_own_runs(tmp_path, capsys):
    "--set runs go to runs/<config>+<overrides>/, record the overrides in params.json, and stale detection sees them."
    cfg, results = tmp_path / "tiny.yaml", tmp_path / "results"
    cfg.write_text(f"base: {ROOT / 'configs' / 'smoke.yaml'}\nparams: {{n_test: 16}}\nsettings: {{bt_pid: null}}\nseeds: [0]\n")
    args = [str(cfg), "--set", "epochs=2", "--set", "lr=1", "--results", str(results), "--no-paper"]
    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"tiny+epochs=2+lr=1.0: 1 runs, 1 to run, 0 finished (skipped) -> {results / 'runs' / 'tiny+epochs=2+lr=1.0'}" in out, out
    assert "overrides (--set): epochs=2, lr=1.0" in out and not results.exists()
    assert main(args) == 0, capsys.readouterr()
    run = results / "runs" / "tiny+epochs=2+lr=1.0" / "bt-s0"
    params = json.loads((run / "params.json").read_text())
    assert (params["args"]["epochs"], params["args"]["lr"], params["overrides"]) == (2, 1.0, {"epochs": 2, "lr": 1.0})
    assert len((run / "history.jsonl").read_text().splitlines()) == 2  # two epochs
    assert not (results / "runs" / "tiny").exists()  # never among the config's own runs
    capsys.readouterr()
    assert main([*args, "--dry-run"]) == 0 and "0 to run, 1 finished" in capsys.readouterr().out
    cfg.write_text(cfg.read_text().replace("n_test: 16", "n_test: 16, weight_decay: 0.001"))  # the config changes under them
    assert main([*args, "--dry-run"]) == 0
    assert "STALE bt-s0 (made with another configuration: weight_decay: folder has 0.0001, asked 0.001)" in capsys.readouterr().out
