"""pid_ssl installed from its wheel, away from any checkout: the batch runner finds its configs and notebooks in the
package (copied there by setup.py when the wheel is built) and writes results to ./results of the current folder.

One test (about a minute): build the wheel from a clean copy of the checkout's files, install it without dependencies
into a fresh virtual environment that reuses this environment's packages (whatever this environment is: the base
interpreter, or the virtual environment the README makes, whose packages a `--system-site-packages` venv would not
see, since that option reaches the base interpreter's), then from a folder outside the checkout
run `pid_ssl_reproduce demo --dry-run`, one tiny real run with the paper notebooks, and the refusal a slim install
(no `repro` extra) gives.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import HANG_S

ROOT = Path(__file__).resolve().parents[1]
BUILD_FILES = ("setup.py", "settings.ini", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE", "CHANGELOG.md", "CITATION.cff", "pid_ssl/", "configs/", "nbs/")


def _sh(cmd: list, cwd: Path, env: dict, ok: bool = True) -> subprocess.CompletedProcess:
    "Run a command; with `ok`, fail the test with its output unless it exits 0."
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=HANG_S)
    assert not ok or r.returncode == 0, f"{cmd} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _clean_copy(dest: Path) -> Path:
    "The checkout's files a build reads (tracked or new, not ignored): no build/ or egg-info left by an earlier build."
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True)
    for f in listed.stdout.splitlines():
        if f.startswith(BUILD_FILES) and (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(ROOT / f, dest / f)
    return dest


def _venv_reusing_this_environment(venv: Path, cwd: Path, env: dict) -> Path:
    """A fresh venv (no pip) whose interpreter also sees this interpreter's site folders, .pth files included, after its
    own: a `.pth` line starting with `import` runs `site.addsitedir` on each (a venv made from inside a venv has the base
    interpreter as its base, so `--system-site-packages` would give the base's packages, not this environment's)."""
    _sh([sys.executable, "-m", "venv", "--without-pip", venv], cwd, env)
    py = venv / "bin" / "python"
    own = Path(_sh([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd, env).stdout.strip())
    here = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]
    (own / "_outer_environment.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in here))
    return py


def test_reproduce_from_installed_wheel(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PID_SSL_REPO")}  # nothing points at the checkout
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", MPLBACKEND="Agg")
    src, wheels, venv, work = _clean_copy(tmp_path / "src"), tmp_path / "wheels", tmp_path / "venv", tmp_path / "work"
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]  # offline when it can be
    _sh([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, ".", "-w", wheels], src, env)
    wheel = next(wheels.glob("pid_ssl-*.whl"))
    assert "pid_ssl/py.typed" in zipfile.ZipFile(wheel).namelist()  # PEP 561: type checkers read the installed annotations
    py = _venv_reusing_this_environment(venv, tmp_path, env)
    _sh([py, "-m", "pip", "install", "-q", "--no-deps", wheel], tmp_path, env)
    # a venv's own `pip install ipykernel` brings its python3 kernel; here ipykernel comes from the outer environment,
    # so install the venv's kernel as that would (a kernel of the venv's interpreter, in the venv)
    _sh([py, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"], tmp_path, env)
    work.mkdir()
    where = _sh([py, "-c", "import pid_ssl, jupyter_client.kernelspec as k; print(pid_ssl.__file__); "
                           "print(k.KernelSpecManager().get_kernel_spec('python3').argv[0])"], work, env).stdout.split()
    pkg = Path(where[0]).parent
    assert pkg.is_relative_to(venv) and Path(where[1]) == py, where  # the wheel's pid_ssl and the venv's own kernel

    # what would run: the installed copies of the config and notebooks, results in ./results of the current folder
    out = _sh([venv / "bin" / "pid_ssl_reproduce", "demo", "--dry-run"], work, env).stdout
    assert f"demo: 6 runs, 6 to run, 0 finished (skipped) -> {work.resolve() / 'results' / 'runs' / 'demo'}" in out, out
    assert f"notebook {pkg.resolve() / '_repro' / 'nbs' / 'experiments' / 'pretrain.ipynb'}" in out, out
    assert not (work / "results").exists()

    # one tiny real run and the paper notebooks: the packaged smoke config (a base given by absolute path) with a
    # 16-image test set, to keep the evaluation short
    (work / "tiny.yaml").write_text(f"base: {pkg / '_repro' / 'configs' / 'smoke.yaml'}\nparams: {{n_test: 16}}\n")
    before = sorted(p.relative_to(pkg) for p in pkg.rglob("*") if "__pycache__" not in p.parts)
    out = _sh([venv / "bin" / "pid_ssl_reproduce", "tiny.yaml", "--results", "r", "--only", "bt", "--seeds", "0"], work,
              env | {"OMP_NUM_THREADS": "1"}).stdout
    assert "1 ran, 0 skipped, 0 failed" in out, out
    run = work / "r" / "runs" / "tiny" / "bt-s0"
    assert all((run / f).is_file() for f in ("params.json", "metrics.json", "history.jsonl", "executed.ipynb")), sorted(run.iterdir())
    assert (work / "r" / "tables" / "tiny" / "table_c3_downstream.csv").is_file()
    assert (work / "r" / "figures" / "tiny" / "figure_accuracy.png").stat().st_size > 1000
    assert sorted(p.relative_to(pkg) for p in pkg.rglob("*") if "__pycache__" not in p.parts) == before  # nothing written in the package

    # a slim install (here the repro extra's papermill hidden): one line, exit 2, before any work
    slim = _sh([py, "-c", "import sys; sys.modules['papermill'] = None\nfrom pid_ssl.reproduce import main\n"
                          "sys.exit(main(['demo', '--results', 'slim']))"], work, env, ok=False)
    assert (slim.returncode, slim.stderr.count("\n")) == (2, 1), slim.stderr
    assert slim.stderr.startswith("pid_ssl_reproduce: error: papermill not installed") and "pip install 'pid_ssl[repro]'" in slim.stderr
    assert not (work / "slim").exists()
