"""`pid_ssl_reproduce --launcher slurm` on a real one-node SLURM cluster, which scripts/slurm_local.sh starts on this
machine (it installs SLURM and munge with apt-get when they are missing: about a minute, as root). Skipped, with the
script's reason, where it cannot start one, and where submitit is not installed.

Real smoke runs of nbs/experiments/pretrain.ipynb as SLURM jobs: a job array of two runs, one of them killed by
`scancel` mid-run, which the launcher lists as failed with its log; the same command then resumes it from its
checkpoint. A launcher stopped mid-run leaves its job running; that job, sent SLURM's preemption / time-limit signal,
is requeued by submitit and resumes, and the same command started again waits for it rather than submitting twice. Every run ends with the numbers of the same run made by the serial runner.
"""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pid_ssl.reproduce import main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from test_launch import cell_sources, run_files  # noqa: E402


@pytest.fixture(scope="module")
def slurm():
    "A running one-node cluster: SLURM_CONF set to it (and one thread per run, as the serial reference uses)."
    pytest.importorskip("submitit")
    script = ["bash", str(ROOT / "scripts" / "slurm_local.sh")]
    ours = subprocess.run(script + ["status"], capture_output=True, text=True, timeout=60).returncode != 0  # none before us
    r = subprocess.run(script + ["start"], capture_output=True, text=True, timeout=900)
    if r.returncode != 0: pytest.skip(f"no local SLURM cluster: {(r.stderr.strip().splitlines() or ['no reason given'])[-1]}")
    conf = r.stdout.strip().splitlines()[-1].split("=", 1)[1]
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SLURM_CONF", conf)
            mp.setenv("OMP_NUM_THREADS", "1")
            yield conf
    finally:  # the cluster this fixture started is stopped (one that was running before is left as it was)
        if ours: subprocess.run(script + ["stop"], capture_output=True, text=True, timeout=120)


def _config(tmp_path: Path, settings: str) -> Path:
    "The smoke wiring at 3 epochs (room to stop a run between checkpoints), seed 0."
    cfg = tmp_path / "long.yaml"
    cfg.write_text(f"base: {ROOT / 'configs' / 'smoke.yaml'}\nparams: {{epochs: 3}}\n{settings}seeds: [0]\n")
    return cfg


def _launch(cfg: Path, results: Path) -> list:
    return [sys.executable, "-m", "pid_ssl.reproduce", str(cfg), "--launcher", "slurm", "--results", str(results), "--no-paper",
            "--cpus-per-run", "1", "--time", "10"]


def _job_when_checkpointed(results: Path, rid: str, p: subprocess.Popen) -> str:
    "The SLURM job id of run `rid`, once the run has written its first checkpoint."
    t0 = time.time()
    while not (results / "runs" / "long" / rid / "checkpoint.pt").exists():
        assert p.poll() is None and time.time() - t0 < 300, p.communicate()
        time.sleep(0.05)
    return json.loads((results / "launch" / "long" / "slurm" / "jobs.json").read_text())[rid]


def _state(job: str) -> str:
    return subprocess.run(["squeue", "-h", "-t", "all", "-j", job, "-o", "%T"], capture_output=True, text=True).stdout.strip()


def test_slurm_grid_scancel_requeue_resume(slurm, tmp_path):
    cfg = _config(tmp_path, "")
    serial = tmp_path / "serial"
    assert main([str(cfg), "--results", str(serial), "--no-paper"]) == 0
    ref = {rid: run_files(serial / "runs" / "long" / rid) for rid in ("bt-s0", "bt_pid-s0")}

    # 1. a job array of two runs; bt-s0's job is cancelled mid-run: it is listed as failed, with its log; bt_pid-s0 finishes
    killed = tmp_path / "killed"
    p = subprocess.Popen(_launch(cfg, killed), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    job = _job_when_checkpointed(killed, "bt-s0", p)
    assert "_" in job  # an array task
    subprocess.run(["scancel", job], check=True)
    out, err = p.communicate(timeout=600)
    assert p.returncode == 1, out + err
    failed = next(l for l in out.splitlines() if l.startswith("  FAILED run bt-s0: "))
    assert "; job cancelled (log " in failed and failed.endswith("_log.err)"), failed
    assert "1 ran, 0 skipped, 1 failed" in out and not (killed / "runs" / "long" / "bt-s0" / "metrics.json").exists()
    # the same command skips the finished run and resumes the cancelled one from its checkpoint
    again = subprocess.run(_launch(cfg, killed), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "1 ran, 1 skipped, 0 failed" in again.stdout, again.stdout + again.stderr
    assert "resumed from" in (killed / "runs" / "long" / "bt-s0" / "executed.ipynb").read_text()
    for rid in ref:
        assert run_files(killed / "runs" / "long" / rid) == ref[rid], rid
        assert cell_sources(killed / "runs" / "long" / rid) == cell_sources(serial / "runs" / "long" / rid)

    # 2. the launcher is stopped (SIGTERM, as Ctrl-C): its job goes on. SLURM's preemption / time-limit signal (USR2) then
    # reaches the job mid-run: submitit requeues it, and it resumes. The same command, started again, waits for that job
    # instead of submitting the run again.
    cfg = _config(tmp_path, "settings: {bt_pid: null}\n")
    pre = tmp_path / "preempted"
    p = subprocess.Popen(_launch(cfg, pre), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    job = _job_when_checkpointed(pre, "bt-s0", p)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130 and f"the jobs go on: `scancel {job}` stops them" in out, out + err
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    t0 = time.time()
    while _state(job) != "PENDING":  # requeued: SLURM holds it for two minutes before it may start again
        assert time.time() - t0 < 120, _state(job)
        time.sleep(0.2)
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)  # not two minutes in a test
    again = subprocess.run(_launch(cfg, pre), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "1 ran, 0 skipped, 0 failed" in again.stdout, again.stdout + again.stderr
    assert f"bt-s0: job {job} of an earlier launch is still queued or running: waiting for it" in again.stdout
    assert "submitted" not in again.stdout, again.stdout
    assert "resumed from" in (pre / "runs" / "long" / "bt-s0" / "executed.ipynb").read_text()
    assert run_files(pre / "runs" / "long" / "bt-s0") == ref["bt-s0"]
    job_log = (pre / "launch" / "long" / "slurm" / job / f"{job}_0_log.out").read_text()
    assert "Caught signal SIGUSR2" in job_log and f"Requeued job {job}" in job_log, job_log
