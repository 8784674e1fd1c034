"""A hostile user's inputs (issue 27): each is refused before any work, in one line naming the file, the setting or the
flag and what to do, with exit status 2 -- never a traceback, a wrong number or a hang."""
import dataclasses
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import HANG_S

from pid_ssl.config import FIELDS, SEED_MAX, ConfigError, RunConfig
from pid_ssl.layout import BACKBONE, CKPT, DAMAGED, HISTORY, METRICS, PARAMS, PREV, PROBE
from pid_ssl.study import load_config
from pid_ssl.reproduce import main, prepare

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "pid_ssl_reproduce: error: "


def _config(tmp_path, text, name="bad.yaml"):
    "A config layered over the smoke config."
    cfg = tmp_path / name
    cfg.write_text(f"base: {ROOT / 'configs' / 'smoke.yaml'}\n{text}")
    return cfg


def _refused(capsys, argv, says, one_line=True) -> str:
    "Run pid_ssl_reproduce: exit status 2, the error on stderr (one line), saying `says`; its error text."
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(PREFIX) and says in err, err
    if one_line: assert len(err.strip().splitlines()) == 1, err
    return err


def test_config_not_utf8_refused(tmp_path, capsys):
    "1. A config file that is not UTF-8 text: one line naming the file (was a UnicodeDecodeError traceback)."
    cfg = tmp_path / "latin1.yaml"
    cfg.write_bytes(f"base: {ROOT / 'configs' / 'smoke.yaml'}\n# caf\xe9\nparams: {{epochs: 1}}\n".encode("latin-1"))
    results = tmp_path / "results"
    _refused(capsys, [str(cfg), "--dry-run", "--results", str(results)], f"{cfg}: not UTF-8 text (byte 0xe9 at offset")
    assert not results.exists()


def test_bad_time_flag_refused(tmp_path, capsys):
    "2. --time garbage (and a memory that is not finite) with --launcher slurm: one line naming the flag (was a ValueError)."
    results = tmp_path / "results"
    _refused(capsys, ["smoke", "--launcher", "slurm", "--time", "garbage", "--dry-run", "--results", str(results)],
             "--time garbage: time 'garbage' is not a SLURM time limit (minutes, or [D-]HH:MM:SS)")
    _refused(capsys, ["smoke", "--launcher", "slurm", "--mem-gb", "inf", "--dry-run", "--results", str(results)],
             "--mem-gb inf: give a finite number")
    cfg = _config(tmp_path, "launcher: {time: soon, mem_gb: .inf}\n")
    err = _refused(capsys, [str(cfg), "--launcher", "slurm", "--dry-run", "--results", str(results)],
                   "time 'soon' is not a SLURM time limit", one_line=False)
    assert "mem_gb = inf; it must be a positive finite float" in err
    assert not results.exists()


def test_refused_submission_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    "3. sbatch refuses the jobs (a bad partition): one line with sbatch's reason, and no stray files (was FailedJobError + a .pkl)."
    pytest.importorskip("submitit")
    bin_dir = tmp_path / "bin"; bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"  # a stand-in for a cluster's sbatch that refuses every job as SLURM does a bad partition
    sbatch.write_text("#!/bin/sh\necho 'sbatch: error: invalid partition specified: nosuch' >&2\n"
                      "echo 'sbatch: error: Batch job submission failed: Invalid partition name specified' >&2\nexit 1\n")
    sbatch.chmod(0o755)
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n"); (bin_dir / "srun").chmod(0o755)  # submitit looks for it
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    results = tmp_path / "results"
    for seeds in (["0"], ["0", "1"]):  # one job (submitit's single submission) and a job array
        err = _refused(capsys, ["smoke", "--launcher", "slurm", "--partition", "nosuch", "--no-paper", "--seeds", *seeds,
                                "--results", str(results)], "--launcher slurm: the jobs were not submitted (")
        assert "invalid partition specified: nosuch" in err and "Traceback" not in err, err
        assert not results.exists(), sorted(results.rglob("*"))
    # a launch folder that was there before keeps what it held, and gains nothing
    old = results / "launch" / "smoke" / "bt-s0.log"; old.parent.mkdir(parents=True); old.write_text("earlier\n")
    _refused(capsys, ["smoke", "--launcher", "slurm", "--partition", "nosuch", "--no-paper", "--results", str(results)],
             "invalid partition specified: nosuch")
    assert sorted(results.rglob("*")) == [results / "launch", results / "launch" / "smoke", old]


@pytest.mark.parametrize("text, key", [
    ("settings:\n  bt: {method: bt}\n  bt: {method: vicreg}\n", "'bt' given twice (first on line 3)"),
    ("settings:\n  bt: {method: bt, lr: 0.1, lr: 0.2}\n", "'lr' given twice (first on line 3)"),
    ("params:\n  epochs: 1\nparams:\n  epochs: 2\n", "'params' given twice (first on line 2)"),
])
def test_duplicate_key_refused(text, key, tmp_path, capsys):
    "4. A key given twice in any mapping: one line naming the key and the file (was: the last one silently won)."
    cfg = _config(tmp_path, text)
    _refused(capsys, [str(cfg), "--dry-run", "--results", str(tmp_path / "results")], f"{cfg}: line ")
    with pytest.raises(ConfigError, match=key.replace("(", r"\(").replace(")", r"\)")): load_config(cfg)


def test_merge_keys_still_override(tmp_path):
    "4. YAML merge keys (`<<:`) may still be overridden: that is no duplicate."
    cfg = _config(tmp_path, "params:\n  a: &a {method: bt, lr: 0.1}\nsettings:\n  bt: {<<: *a, lr: 0.2}\n")
    assert load_config(cfg).data["settings"]["bt"] == {"method": "bt", "lr": 0.2}


@pytest.mark.parametrize("setting, key", [("{method: bt, weight_decay: .inf}", "weight_decay = inf must be a finite number"),
                                          ("{method: bt, bt_lambda: .inf}", "bt_lambda = inf must be a finite number"),
                                          ("{method: bt_pid, beta: .inf}", "beta = inf must be a finite number"),
                                          ("{method: bt, warmup_epochs: -.inf}", "warmup_epochs = -inf must be a finite number")])
def test_infinite_value_refused(setting, key, tmp_path, capsys):
    "5. An infinite value in a config: refused by --dry-run (was: an epoch trained, then a NonFiniteError traceback)."
    cfg = _config(tmp_path, f"settings:\n  bt: {setting}\n  bt_pid: null\n")
    err = _refused(capsys, [str(cfg), "--dry-run", "--results", str(tmp_path / "results")], key)
    assert f"{cfg}, settings.bt: " in err


def test_every_float_parameter_is_finite():
    "5. Every float parameter of RunConfig refuses inf and -inf (unless its option says it takes them: none does now)."
    floats = [n for n, f in FIELDS.items() if float in (getattr(f.type, "__args__", None) or (f.type,))]
    assert {"weight_decay", "bt_lambda", "beta", "lr", "warmup_epochs", "crop_scale"} <= set(floats)
    for name in floats:
        for v in (math.inf, -math.inf):
            with pytest.raises(ConfigError, match=f"{name} = {v!r} must be a finite number"): RunConfig.make({name: v})


def test_seed_range(tmp_path, capsys):
    "6. Seeds outside the generators' range: refused by --dry-run (was: accepted, then an overflow in torch.manual_seed)."
    results = tmp_path / "results"
    for s in (2**64, 2**32):
        _refused(capsys, ["smoke", "--seeds", str(s), "--dry-run", "--results", str(results)],
                 f"--seeds: seeds must be non-negative integers up to {SEED_MAX} (the generators' range); [{s}] are not")
    cfg = _config(tmp_path, "seeds: [0, -1]\n")
    _refused(capsys, [str(cfg), "--dry-run", "--results", str(results)], "[-1] are not")
    for name in ("seed", "subset_seed"):
        with pytest.raises(ConfigError, match=f"{name} = {2**64} must be <= {SEED_MAX}"): RunConfig.make({name: 2**64})
    assert not results.exists()
    import numpy as np, torch  # the largest seed and what a run derives from it are taken by every generator
    np.random.seed(SEED_MAX); torch.manual_seed(SEED_MAX + 12345); torch.Generator().manual_seed(SEED_MAX + 2)


def _finished_run(tmp_path, rows: int, epochs: int = 12):
    "A run folder that the runner takes as finished with the config's configuration, its history `rows` of `epochs` long."
    cfg = _config(tmp_path, f"params: {{epochs: {epochs}}}\nsettings: {{bt_pid: null}}\nseeds: [0]\n", name="trunc.yaml")
    results = tmp_path / "results"
    run = prepare(cfg, results).runs[0]
    run.out_dir.mkdir(parents=True)
    (run.out_dir / "params.json").write_text(json.dumps(dict(args=dataclasses.asdict(run.config.effective()))))
    (run.out_dir / "history.jsonl").write_text("".join(json.dumps(dict(epoch=e, loss=1.0 / e)) + "\n" for e in range(1, rows + 1)))
    (run.out_dir / "metrics.json").write_text('{"knn200_top1": 42.0}\n')
    assert run.state == "finished"
    return cfg, results, run.out_dir


def test_reevaluate_refuses_truncated_history(tmp_path, capsys):
    "7. --reevaluate on a run whose history.jsonl stops at epoch 5 of 12: refused, metrics.json untouched (was: exit 0, epoch-5 terms)."
    cfg, results, out = _finished_run(tmp_path, rows=5)
    before = (out / "metrics.json").read_bytes()
    _refused(capsys, [str(cfg), "--reevaluate", "--no-paper", "--results", str(results)],
             f"--reevaluate: {out / 'history.jsonl'} holds 5 of the run's 12 epochs (the last row is epoch 5)")
    _refused(capsys, [str(cfg), "--reevaluate", "--dry-run", "--results", str(results)], "holds 5 of the run's 12 epochs")
    assert (out / "metrics.json").read_bytes() == before
    from pid_ssl.rundir import RunFolderError  # the library function refuses it as well
    from pid_ssl.runeval import reevaluate
    with pytest.raises(RunFolderError, match="holds 5 of the run's 12 epochs"): reevaluate(out)
    assert (out / "metrics.json").read_bytes() == before


@pytest.mark.parametrize("name", ["...yaml", ". .yaml", "-x.yaml"])
def test_config_name_checked(name, tmp_path, capsys):
    "8. A config file's name is its runs' folder: '...yaml' (config '..') is refused (was: runs in the results root)."
    cfg = _config(tmp_path, "", name=name)
    results = tmp_path / "results"
    _refused(capsys, [str(cfg), "--dry-run", "--results", str(results)],
             f"{cfg}: the config's name {Path(name).stem!r} (its file name")
    assert not results.exists()


def test_config_names_in_use_accepted(tmp_path, capsys):
    "8. Names as the shipped and tested configs have them stay valid (letters, digits, '_', '-', '.')."
    for name in ("cpu_pilot_t1.yaml", "my-config.v2.yaml"):
        assert main([str(_config(tmp_path, "", name=name)), "--dry-run", "--results", str(tmp_path / "r")]) == 0, capsys.readouterr().err


def test_local_cpus_per_run_zero_refused(tmp_path, capsys):
    "9. --launcher local --cpus-per-run 0: refused (was: silently replaced by the default)."
    results = tmp_path / "results"
    _refused(capsys, ["smoke", "--launcher", "local", "--cpus-per-run", "0", "--dry-run", "--results", str(results)],
             "--cpus-per-run 0: give at least 1")
    _refused(capsys, ["smoke", "--launcher", "local", "--cpus-per-run", "-2", "--dry-run", "--results", str(results)],
             "--cpus-per-run -2: give at least 1")
    assert not results.exists()


def test_planted_checkpoint_runs_no_code(tmp_path, capfd):
    "10a. A checkpoint whose unpickling would run a command: the resume refuses it in one line, exit 2, and runs nothing."
    import os
    import subprocess
    import sys
    import torch

    class Planted:
        def __reduce__(self): return (os.system, (f"touch {tmp_path / 'code-ran'}",))

    out = tmp_path / "run"; out.mkdir()
    torch.save(dict(model={}, opt={}, state=dict(epoch=1), extra=Planted()), out / "checkpoint.pt")
    small = dict(dataset="synthetic", n_train=128, n_test=64, image_size=16, arch="resnet10t", projector="64-64", epochs=2,
                 batch_size=64, pid_proj_dim=16, linear_epochs=1, semi_fractions="", device="cpu", precision="fp32")
    cmd = [sys.executable, "-m", "pid_ssl.train", "--out-dir", str(out), "--no-progress", *[f"--{k}={v}" for k, v in small.items()]]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pid_ssl_train: error: cannot resume "), r.stderr
    assert "holds more than tensors and plain values (it refers to posix.system)" in lines[0], r.stderr
    assert not (tmp_path / "code-ran").exists()


def test_resume_after_an_evaluation_during_training(tmp_path):
    """10a'. A run resumed from a checkpoint written after an evaluation during training (its history holds the
    evaluation's numbers): it reads back as weights only and ends with the uninterrupted run's metrics and history.
    (Was: numpy scalars in the history made every such checkpoint unreadable.)"""
    from pid_ssl.files import read_json, read_jsonl
    from pid_ssl.layout import CKPT, PREV
    from pid_ssl.rundir import load_checkpoint
    from pid_ssl.train import fit

    tiny = dict(dataset="synthetic", n_train=64, n_test=32, eval_n_train=64, image_size=16, arch="resnet10t",
                backbone_kwargs='{"channels": [8, 16, 32, 64]}', projector="32-32", batch_size=32, pid_proj_dim=4,
                method="bt_pid", epochs=2, eval_every=1, knn_k="5", linear_wds="0", warmup_epochs=1, linear_epochs=1,
                semi_fractions="", precision="fp32", device="cpu", progress=False, eval_preset="quick")
    out = tmp_path / "run"
    ref = fit(RunConfig.make(tiny, out_dir=str(out)))
    history = read_jsonl(out / "history.jsonl")
    assert "knn5_top1" in history[0] and "label_disc_mi1" in history[0]  # epoch 1 was evaluated
    for f in ("metrics.json", "backbone.safetensors", "online_probe.safetensors", CKPT): (out / f).unlink()
    ck, p = load_checkpoint(out)
    assert p.name == PREV and ck["state"]["epoch"] == 1
    again = fit(RunConfig.make(tiny, out_dir=str(out)))
    assert _untimed([again]) == _untimed([ref]) == _untimed([read_json(out / "metrics.json")])
    assert _untimed(read_jsonl(out / "history.jsonl")) == _untimed(history)


@pytest.mark.parametrize("setting, says", [
    ("{method: bt, n_train: 0, batch_size: 100000}", "batch_size=100000 is more than the 512 training images of 'synthetic' (n_train=0"),
    ("{method: bt, dataset: cifar10, n_train: 60000}", "n_train=60000 is more than the 50000 training images of 'cifar10'"),
])
def test_batch_larger_than_dataset_refused(setting, says, tmp_path, capsys):
    "10b. A batch (or a subset) larger than the dataset: refused by --dry-run (was: accepted, then an error in the run)."
    cfg = _config(tmp_path, f"settings:\n  bt: {setting}\n  bt_pid: null\n")
    _refused(capsys, [str(cfg), "--dry-run", "--results", str(tmp_path / "results")], says)


def _alive(pid: int) -> bool:
    "Whether process `pid` runs (a zombie, ended but not yet reaped, counts as ended)."
    try: state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError): return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="PR_SET_PDEATHSIG and /proc: Linux only")
def test_local_workers_die_with_their_launcher(tmp_path):
    "10c. SIGKILL to `--launcher local`: its worker stops too (was: it trained on, orphaned), leaving no claim behind."
    import os
    import signal
    import subprocess
    import sys
    import time
    from pid_ssl.lock import lock_holder
    cfg = tmp_path / "long.yaml"  # the smoke wiring, 3 epochs: room to kill the launcher mid-run
    cfg.write_text(f"base: {ROOT / 'configs' / 'smoke.yaml'}\nparams: {{epochs: 3}}\nsettings: {{bt_pid: null}}\nseeds: [0]\n")
    results = tmp_path / "results"
    claim = results / "launch" / "long" / "claims" / "bt-s0"
    cmd = [sys.executable, "-m", "pid_ssl.reproduce", str(cfg), "--results", str(results), "--no-paper", "--launcher", "local",
           "--jobs", "1", "--cpus-per-run", "1"]
    launcher = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not (lock_holder(claim) or {}).get("pid") and launcher.poll() is None and time.time() - t0 < 180: time.sleep(0.05)
    worker = lock_holder(claim)["pid"]  # the worker process holds the run's claim
    launcher.send_signal(signal.SIGKILL); launcher.wait()
    t0 = time.time()
    while _alive(worker) and time.time() - t0 < 120: time.sleep(0.1)
    alive = _alive(worker)
    if alive: os.kill(worker, signal.SIGKILL)
    assert not alive, "the worker outlived its launcher"
    t0 = time.time()  # its kernel stops with it and drops the run's lock
    while lock_holder(results / "runs" / "long" / "bt-s0") is not None and time.time() - t0 < 60: time.sleep(0.1)
    assert lock_holder(results / "runs" / "long" / "bt-s0") is None
    assert not claim.exists(), sorted(claim.rglob("*"))


def _fake_squeue(tmp_path, monkeypatch, line: str):
    "A `squeue` on PATH that reports one job's `id|STATE|reason`."
    bin_ = tmp_path / "bin"; bin_.mkdir(exist_ok=True)
    (bin_ / "squeue").write_text(f"#!/bin/sh\necho '{line}'\n"); (bin_ / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")


class _Job:
    "What wait_jobs reads of a submitit job: its id and log paths."
    def __init__(self, job_id, tmp_path):
        self.job_id = job_id
        self.paths = type("P", (), dict(stderr=tmp_path / f"{job_id}.err", result_pickle=tmp_path / f"{job_id}.pkl"))()


def test_slurm_job_that_cannot_start_is_given_up_with_its_reason(tmp_path, monkeypatch):
    "Case 10: a job pending for a reason that never clears (PartitionConfig: more CPUs than the partition has) is not waited for forever."
    from pid_ssl.slurm import wait_jobs
    _fake_squeue(tmp_path, monkeypatch, "41|PENDING|PartitionConfig")
    said = []
    status = wait_jobs({"bt-s0": _Job("41", tmp_path)}, echo=said.append, poll_s=0.01)
    assert "bt-s0: job 41 pending (PartitionConfig)" in said, said
    assert status["bt-s0"].startswith("job 41 cannot start as submitted (SLURM: pending, PartitionConfig); `scancel 41`"), status


def test_slurm_wait_limit(tmp_path, monkeypatch):
    "A job pending for an ordinary reason (Resources) is waited for, up to --max-pending-min, then reported with its reason."
    from pid_ssl.slurm import wait_jobs
    _fake_squeue(tmp_path, monkeypatch, "42|PENDING|Resources")
    said, t0 = [], time.perf_counter()
    status = wait_jobs({"bt-s0": _Job("42", tmp_path)}, echo=said.append, poll_s=0.05, max_pending_s=0.3)
    assert time.perf_counter() - t0 >= 0.3 and "bt-s0: job 42 pending (Resources)" in said
    assert status["bt-s0"].startswith("job 42 still pending after") and "(SLURM: Resources)" in status["bt-s0"], status


def test_max_pending_min_checked_before_anything_runs(tmp_path, capsys):
    from pid_ssl.reproduce import main
    assert main(["smoke", "--launcher", "slurm", "--max-pending-min", "0", "--dry-run", "--results", str(tmp_path)]) == 2
    assert "--max-pending-min 0: give a positive number of minutes" in capsys.readouterr().err
    assert main(["smoke", "--launcher", "local", "--max-pending-min", "5", "--dry-run", "--results", str(tmp_path)]) == 2
    assert "--max-pending-min: not an option of --launcher local" in capsys.readouterr().err


# Faults in a real run: SIGKILL at six moments, a full disk at a checkpoint and at the backbone, damaged checkpoints.
# Each ends, once the fault is gone and the same command runs again, with files equal to an uninterrupted run's
# (timings aside), having lost nothing finished before the fault. The runs are `pid_ssl_train` processes with the
# quick evaluation (these tests are about the run folder, not the evaluation's numbers); one reference run serves all.
# (Moved from nbs/09_train.ipynb, where they ran in the notebook's test.)

RUN = dict(dataset="synthetic", n_train=128, n_test=64, image_size=16, projector="64-64", batch_size=32, pid_proj_dim=4,
           lr=0.3, warmup_epochs=1, linear_epochs=10, method="bt_pid", epochs=3, checkpoint_every=1, eval_preset="quick",
           device="cpu")
FULL_DISK = """import errno, os, sys
target, nth, real = sys.argv.pop(1), int(sys.argv.pop(1)), os.fsync
seen = []
def fsync(fd):  # the disk fills up while the nth temp file of `target` is written: that write and every later one fails
    name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
    if name.startswith(f".{target}.") and name.endswith(".tmp"): seen.append(name)
    if len(seen) >= nth and name.endswith(".tmp"): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real(fd)
os.fsync = fsync
from pid_ssl.train import main
sys.exit(main())
"""


def _train_cmd(out: Path, *pre: str) -> list:
    "The `pid_ssl_train` command of the fault tests' run into `out` (`pre`: a script and its arguments to run instead of -m)."
    start = list(pre) if pre else ["-m", "pid_ssl.train"]
    return [sys.executable, *start, "--out-dir", str(out), "--no-progress", *[f"--{k.replace('_', '-')}={v}" for k, v in RUN.items()]]


def _train(out: Path, *pre: str, ok: bool = True) -> subprocess.CompletedProcess:
    "Run the command to its end (one torch thread, as every run of these tests); with `ok`, check that it finished."
    r = subprocess.run(_train_cmd(out, *pre), capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                       timeout=HANG_S)
    if ok: assert r.returncode == 0 and (out / METRICS).exists(), r.stdout[-2000:] + r.stderr[-2000:]
    return r


def _untimed(rows: list) -> list:
    "Each row (metrics or history) without the keys that differ between two equal runs (imported here: torch is heavy)."
    from pid_ssl.train import TIMING_KEYS
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


def _tensors(path: Path) -> dict:
    from safetensors.torch import load_file
    return load_file(path)


def _same_run(out: Path, ref: Path):
    "`out` holds what the uninterrupted `ref` holds: metrics and history (timings aside), the run's configuration, backbone and probe tensors, and no temp file or lock."
    from pid_ssl.files import read_json, read_jsonl
    import torch
    assert _untimed([read_json(out / METRICS)]) == _untimed([read_json(ref / METRICS)])
    assert _untimed(read_jsonl(out / HISTORY)) == _untimed(read_jsonl(ref / HISTORY))
    args = lambda d: {k: v for k, v in read_json(d / PARAMS)["args"].items() if k != "out_dir"}  # noqa: E731
    assert args(out) == args(ref)
    for f in (BACKBONE, PROBE):
        a, b = _tensors(out / f), _tensors(ref / f)
        assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a), f
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no temp file, no lock


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    "The uninterrupted run the fault tests compare with."
    out = tmp_path_factory.mktemp("reference") / "run"
    _train(out)
    return out


def _since(run: Path, pattern: str, t0: float) -> bool:
    "Whether a file matching `pattern` in the run folder was written by the process started at `t0`."
    for f in run.glob(pattern):
        try:
            if f.stat().st_mtime >= t0: return True
        except FileNotFoundError: pass
    return False


def _kill_when(run: Path, cond, delay: float = 0.0) -> bool:
    "Start the run, SIGKILL it `delay` s after `cond(t0)` first holds; whether it was killed before finishing."
    t0 = time.time()
    p = subprocess.Popen(_train_cmd(run), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    while not cond(t0) and p.poll() is None and time.time() - t0 < HANG_S: time.sleep(0.002)
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.wait()
    return p.returncode == -signal.SIGKILL and not (run / METRICS).exists()


def test_sigkill_at_six_moments_resumes_to_the_uninterrupted_run(tmp_path, reference):
    """SIGKILL to a `pid_ssl_train` process at six moments of one run -- at a random moment of its start-up, at random
    moments of training, twice while a checkpoint is being written (its temp file exists), and once at the end (the
    backbone written, the metrics not yet) -- each followed by the same command: the run ends as the uninterrupted one,
    its last start taking over the killed process's lock."""
    rng, run = random.Random(0), tmp_path / "run"
    training = lambda t0: _since(run, HISTORY, t0)  # noqa: E731  (rewritten once a process has set up, right before its first step)
    writing = lambda t0: _since(run, f".{CKPT}.*.tmp", t0)  # noqa: E731
    moments = [("start-up", lambda t0: True, rng.uniform(0.5, 3)), ("training", training, rng.uniform(0, 0.5)),
               ("checkpoint write", writing, 0.0), ("training", training, rng.uniform(0, 0.3)),
               ("checkpoint write", writing, 0.0), ("the end", lambda t0: _since(run, BACKBONE, t0), 0.0)]
    killed = [(what, _kill_when(run, cond, delay)) for what, cond, delay in moments]
    assert killed == [(what, True) for what, _, _ in moments]
    r = _train(run)
    assert "resumed from" in r.stdout and "took over the lock of process" in r.stdout, r.stdout[-2000:]
    _same_run(run, reference)


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="finds the file being written in /proc: Linux only")
@pytest.mark.parametrize("target, nth, kept", [(CKPT, 2, 1), (BACKBONE, 1, 3)])
def test_disk_full_loses_nothing(target, nth, kept, tmp_path, reference):
    """The disk fills up while the run writes its second checkpoint, or its backbone: the run stops saying so, leaving
    the files written before (the first checkpoint; all three) and no temp file; run again, it ends as the
    uninterrupted run."""
    from pid_ssl.rundir import load_checkpoint
    run, script = tmp_path / "run", tmp_path / "full_disk.py"
    script.write_text(FULL_DISK)
    r = _train(run, str(script), target, str(nth), ok=False)
    # one line naming the file, exit status 2 (a user's error to fix), and the way on
    assert r.returncode == 2 and r.stderr == (f"pid_ssl_train: error: [Errno 28] No space left on device while writing "
                                              f"{run / target} (what was there before is unchanged: free some space "
                                              "and run the same command again)\n"), r.stdout[-2000:] + r.stderr[-2000:]
    assert not (run / METRICS).exists() and not (run / BACKBONE).exists()
    assert sorted(p.name for p in run.iterdir() if p.name.endswith(".tmp")) == []
    assert load_checkpoint(run)[0]["state"]["epoch"] == kept
    from pid_ssl.files import read_jsonl
    assert _untimed(read_jsonl(run / HISTORY)) == _untimed(read_jsonl(reference / HISTORY))[:kept]
    r = _train(run)
    assert "resumed from" in r.stdout, r.stdout[-2000:]
    _same_run(run, reference)


def test_damaged_checkpoint_resumes_from_the_one_before(tmp_path, reference):
    """The finished run, copied and made unfinished (its metrics deleted), its last checkpoint truncated or overwritten
    with junk: the resume sets it aside, takes the previous checkpoint (epoch 2), redoes epoch 3 and ends as the
    uninterrupted run. With both checkpoints unreadable the run stops in one line naming the files and the way on."""
    for how in ("truncate", "junk"):
        run = tmp_path / how
        shutil.copytree(reference, run)
        (run / METRICS).unlink()
        raw = (run / CKPT).read_bytes()
        (run / CKPT).write_bytes(raw[: len(raw) // 3] if how == "truncate" else (b"junk" * len(raw))[: len(raw)])
        r = _train(run)
        assert "resumed from" in r.stdout and (run / DAMAGED).exists(), r.stdout[-2000:]
        (run / DAMAGED).unlink()
        _same_run(run, reference)
    run = tmp_path / "both"
    shutil.copytree(reference, run)
    (run / METRICS).unlink()
    for f in (CKPT, PREV): (run / f).write_bytes(b"junk")
    r = _train(run, ok=False)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"Delete it to restart the run from its first epoch (rm {run / CKPT} {run / PREV})" in r.stderr, r.stderr
