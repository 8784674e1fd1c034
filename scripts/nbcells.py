"""Run the code cells of pid_ssl's notebooks without Jupyter, nbdev or nbformat (plain json + exec).

Used by scripts/gpu_check.sh on machines that have torch but not the notebook tool chain. Cells run in order in one
namespace per notebook, from the notebook's folder, as `nbdev_test` runs them. A cell is skipped when one of its
`#|` directives is in `skip` (by default `slow` and `eval: false`; add `cuda` on a machine without a GPU).

    python scripts/nbcells.py nbs/04_data.ipynb nbs/09_train.ipynb [--skip slow,eval:false] [--only-with cuda]
"""
import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path


def cell_flags(source: str) -> set[str]:
    "The `#|` directives of a cell, normalised: '#| eval: false' -> 'eval:false', '#| cuda' -> 'cuda'."
    flags = set()
    for line in source.splitlines():
        s = line.strip()
        if not s: continue
        if not s.startswith("#|"): break
        flags.add(s[2:].strip().replace(" ", "").split("#")[0])
    return flags


def code_cells(path) -> list[str]:
    "Sources of the code cells of an .ipynb file."
    nb = json.loads(Path(path).read_text())
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in nb["cells"] if c["cell_type"] == "code"]


def _plain_python(src: str) -> str:
    "Drop IPython-only lines (%magics, !shell): they have no plain-Python meaning here."
    return "\n".join("pass  # " + l if l.lstrip().startswith(("%", "!")) else l for l in src.splitlines())


def run_notebook(path, skip=("slow", "eval:false"), verbose: bool = True) -> dict:
    "Execute a notebook's code cells (skipping flagged ones); returns ok, seconds, counts and the error if any."
    path = Path(path).resolve(); skip = {s.replace(" ", "") for s in skip}
    cells, ns, here, t0 = code_cells(path), {"__name__": "__main__", "__file__": str(path)}, os.getcwd(), time.time()
    out = dict(notebook=path.name, ok=True, cells=len(cells), run=0, skipped=0, error=None, slowest=[])
    times = []
    os.chdir(path.parent); sys.path.insert(0, str(path.parent))
    try:
        for i, src in enumerate(cells):
            flags = cell_flags(src)
            if flags & skip: out["skipped"] += 1; continue
            t = time.time()
            try: exec(compile(_plain_python(src), f"{path.name}[cell {i}]", "exec"), ns)
            except BaseException as e:  # noqa: BLE001 - report any failure of the cell, then stop this notebook
                if isinstance(e, KeyboardInterrupt): raise
                out.update(ok=False, error=f"cell {i} ({', '.join(sorted(flags)) or 'no flags'}): " + "".join(
                    traceback.format_exception(type(e), e, e.__traceback__))[-3000:])
                break
            times.append((round(time.time() - t, 2), i, sorted(flags))); out["run"] += 1
    finally:
        os.chdir(here); sys.path.remove(str(path.parent))
    out["seconds"] = round(time.time() - t0, 2)
    out["slowest"] = sorted(times, reverse=True)[:5]
    if verbose: print(f"{'ok  ' if out['ok'] else 'FAIL'} {path.name}: {out['run']} cells run, {out['skipped']} skipped, "
                      f"{out['seconds']} s" + ("" if out["ok"] else "\n" + out["error"]), flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", nargs="+")
    p.add_argument("--skip", default="slow,eval:false", help="comma list of flags whose cells are skipped")
    p.add_argument("--only-with", default="", help="run only notebooks having a cell with this flag (e.g. cuda)")
    p.add_argument("--json", default="", help="write the results here")
    a = p.parse_args(argv)
    skip = [s for s in a.skip.split(",") if s]
    nbs = [n for n in a.notebooks if not a.only_with or any(a.only_with in cell_flags(c) for c in code_cells(n))]
    res = [run_notebook(n, skip) for n in nbs]
    if a.json: Path(a.json).write_text(json.dumps(res, indent=1))
    return 0 if all(r["ok"] for r in res) else 1


if __name__ == "__main__":
    sys.exit(main())
