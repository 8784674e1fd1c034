"""The parallel launchers of `pid_ssl_reproduce` (pid_ssl.launch) with real smoke runs of nbs/experiments/pretrain.ipynb:
`--launcher local` gives the serial runner's numbers, and two launchers on one results folder train each run once; the
SLURM launcher's job, preempted (SIGUSR2, as SLURM signals it) mid-run on submitit's local executor, is requeued and
resumes to an uninterrupted run's numbers. A real one-node SLURM cluster is tested in tests/test_launch_slurm.py.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import HANG_S

from pid_ssl.lock import lock_holder
from pid_ssl.reproduce import main, reproduce

ROOT = Path(__file__).resolve().parents[1]


def run_files(run_dir: Path) -> dict:
    "A run's numbers without its timings: metrics.json and history.jsonl minus the fields measured in seconds or rates."
    timing = lambda k: k.endswith("_s") or k == "pairs_per_s"
    metrics = {k: v for k, v in json.loads((run_dir / "metrics.json").read_text()).items() if not timing(k)}
    history = [{k: v for k, v in json.loads(l).items() if not timing(k)} for l in (run_dir / "history.jsonl").read_text().splitlines()]
    return dict(metrics=metrics, history=history, threads=json.loads((run_dir / "env.json").read_text())["torch_threads"])


def cell_sources(run_dir: Path) -> list:
    "The executed notebook's cell sources, the injected parameters cell without its run folder."
    cells = json.loads((run_dir / "executed.ipynb").read_text())["cells"]
    return ["".join(c["source"]).replace(str(run_dir), "<run>") for c in cells]


def test_local_launcher_matches_serial_and_trains_each_run_once(tmp_path, monkeypatch, capsys):
    "Smoke seed 0 (2 runs): serially on 1 thread, then by two local launchers started at once (2 runs at once, 1 thread each)."
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    serial = tmp_path / "serial"
    assert main(["smoke", "--seeds", "0", "--results", str(serial), "--no-paper"]) == 0, capsys.readouterr()
    local = tmp_path / "local"
    cmd = [sys.executable, "-m", "pid_ssl.reproduce", "smoke", "--seeds", "0", "--results", str(local), "--no-paper",
           "--launcher", "local", "--jobs", "2", "--cpus-per-run", "1"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=HANG_S) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    said = "\n".join(o for o, _ in outs)
    for rid in ("bt-s0", "bt_pid-s0"):  # trained by exactly one of the two; the other left it or found it finished
        assert said.count(f"] {rid} done in ") == 1, said
        a, b = serial / "runs" / "smoke" / rid, local / "runs" / "smoke" / rid
        assert run_files(b) == run_files(a) and run_files(b)["threads"] == 1, rid
        assert cell_sources(b) == cell_sources(a)
        assert sorted(p.name for p in b.iterdir()) == sorted(p.name for p in a.iterdir())
    logs = local / "launch" / "smoke"
    assert (logs / ".gitignore").read_text() == "*\n" and "bt_pid-s0 on 1 thread" in (logs / "bt_pid-s0.log").read_text()


def test_every_paper_config_dry_runs_on_slurm(capsys, tmp_path):
    "The paper configs' `launcher:` resources reach the SLURM jobs (a dry run: no cluster, no submitit needed)."
    assert main(["paper_cifar10", "--launcher", "slurm", "--dry-run", "--results", str(tmp_path), "--partition", "gpu",
                 "--sbatch=--account=lab"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("launcher slurm:"))
    assert line.startswith("launcher slurm: 36 job(s) in one array named pid_ssl-paper_cifar10, each: sbatch --partition=gpu --gpus-per-node=1"), line
    assert line.endswith("--account=lab") and "--cpus-per-task=" in line and "--mem=" in line and "--time=" in line, line
    assert "  job bt-s0" in out and list(tmp_path.iterdir()) == []


def _long_config(tmp_path: Path) -> Path:
    "The smoke wiring, bt seed 0 only, 3 epochs: room to stop it between checkpoints."
    cfg = tmp_path / "long.yaml"
    cfg.write_text(f"base: {ROOT / 'configs' / 'smoke.yaml'}\nparams: {{epochs: 3}}\nsettings: {{bt_pid: null}}\nseeds: [0]\n")
    return cfg


def _wait_for(cond, timeout: float, what: str):
    t0 = time.time()
    while not cond():
        assert time.time() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_preempted_job_requeues_and_resumes(tmp_path, monkeypatch):
    "submitit's local executor: SIGUSR2 to the job mid-run (SLURM's preemption/time-limit signal) -> requeued, resumed, same numbers."
    pytest.importorskip("submitit")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cfg = _long_config(tmp_path)
    ref = reproduce(str(cfg), results=tmp_path / "serial", paper=False, echo=lambda *a: None)
    assert ref["runs"] == {"bt-s0": "ok"}
    results, log = tmp_path / "slurm", []
    run = results / "runs" / "long" / "bt-s0"
    box = {}
    t = threading.Thread(target=lambda: box.update(rep=reproduce(str(cfg), results=results, paper=False, echo=log.append,
                                                                    launcher="slurm", launch=dict(cluster="local", time=10))))
    t.start()
    _wait_for(lambda: (run / "checkpoint.pt").exists() or not t.is_alive(), HANG_S, "the first checkpoint")
    job = lock_holder(results / "launch" / "long" / "claims" / "bt-s0")  # the job's own process holds the run's claim
    os.kill(job["pid"], signal.SIGUSR2)
    t.join(HANG_S)
    assert box["rep"]["runs"] == {"bt-s0": "ok"} and box["rep"]["failed"] == [], log
    assert "resumed from" in (run / "executed.ipynb").read_text()
    assert run_files(run) == run_files(tmp_path / "serial" / "runs" / "long" / "bt-s0")
    job_log = next((results / "launch" / "long" / "slurm").glob("*/*_log.out")).read_text()  # submitit's own log
    assert "Caught signal SIGUSR2" in job_log and "Calling checkpoint method" in job_log and "Requeued job" in job_log, job_log
