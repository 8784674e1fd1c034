"""Run every library notebook and nbs/index.ipynb under pytest as JupyterLab's "Run All" runs it: one test per
notebook, each executed top to bottom in its own Jupyter kernel (nbclient), every cell included. A `cuda` cell skips
itself with a printed reason where there is no GPU; a `slow` cell runs a shorter version of itself when PID_SSL_CI=1,
which the test sets in the kernel's environment.

The experiment and paper notebooks (nbs/experiments, nbs/paper) are executed by tests/test_reproduce.py through
the papermill runner instead, since they need parameters and run folders; every notebook's kernelspec is checked here.
"""
import os
import subprocess
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
NOTEBOOKS = sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith("_"))
CELL_TIMEOUT = 1800  # seconds: a hung cell fails its notebook instead of the whole run


def _kernel_env() -> dict:
    "The test's environment for the kernel, with PID_SSL_CI=1 and this checkout's pid_ssl first on the path."
    path = os.pathsep.join([str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
    return {**os.environ, "PID_SSL_CI": "1", "PYTHONPATH": path}


def _results_status() -> str:
    "git's view of results/ (empty outside a git checkout): a notebook run must leave the committed results alone."
    r = subprocess.run(["git", "status", "--porcelain", "--", "results"], cwd=ROOT, capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook(nb):
    from nbclient import NotebookClient
    notebook = nbformat.read(nb, as_version=4)
    before = _results_status()
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name=notebook.metadata["kernelspec"]["name"],
                            resources={"metadata": {"path": str(NBS)}}, shutdown_kernel="immediate")  # no wait for its exit
    client.execute(env=_kernel_env())  # a failing cell raises CellExecutionError with its source and traceback
    assert _results_status() == before, f"{nb.name} changed files under results/:\n{_results_status()}"


ALL_NOTEBOOKS = sorted(p for p in NBS.rglob("*.ipynb") if not any(s.startswith((".", "_")) for s in p.relative_to(NBS).parts))


@pytest.mark.parametrize("nb", ALL_NOTEBOOKS, ids=lambda p: str(p.relative_to(NBS)))
def test_kernelspec(nb):
    "Every notebook names its kernel, so Jupyter does not ask for one and `papermill NB out.ipynb` runs it."
    spec = nbformat.read(nb, as_version=4).metadata.get("kernelspec", {})
    assert (spec.get("name"), spec.get("language")) == ("python3", "python"), f"{nb}: kernelspec {spec}"


def test_index_runs_cell_by_cell_as_nbdev_does():
    """nbs/index.ipynb's cells that nbdev's docs step runs (nbdev_readme, nbdev_docs: exported cells and cells with an
    import), run alone in order in a fresh shell, need no name from the cells it skips."""
    from execnb.nbio import read_nb
    from execnb.shell import CaptureShell
    from nbdev.process import NBProcessor
    from nbdev.processors import _do_eval  # nbdev's own choice of the cells it executes (nbdev==2.4.14 is pinned)
    nb = read_nb(NBS / "index.ipynb")
    NBProcessor(nb=nb, procs=[])  # parses each cell's `#|` directives, which _do_eval reads
    cells = [c for c in nb.cells if c.cell_type == "code" and _do_eval(c)]
    assert cells, "index.ipynb has no import cell?"
    old = Path.cwd(); os.chdir(NBS)
    try:
        shell = CaptureShell()
        for c in cells:
            shell.cell(c)
            assert not shell.exc, f"index.ipynb cell {c.id} fails when nbdev runs only these cells: {shell.exc!r}\n{c.source}"
    finally: os.chdir(old)
