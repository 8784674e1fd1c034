"""Extract the cpu study's metrics under the earlier evaluation protocol into one small CSV, once.

The cpu study's 39 runs were first made and committed under an earlier evaluation protocol (BatchNorm statistics
re-estimated for the random initialisation only; semi-supervised fine-tuning until the run's own loss had
converged). The present protocol replaced them. Their metrics stay in the repository's history at commit 66c5c64;
this script reads each run's metrics.json there (`git show <commit>:results/runs/cpu/<run>/metrics.json`) and writes
the accuracies that `nbs/paper/table_protocol_change.ipynb` sets beside the present ones, so that the notebook needs
no git history:

    python scripts/old_protocol_metrics.py            # -> results/tables/cpu/old_protocol_metrics.csv
"""
import argparse
import csv
import json
import subprocess
from pathlib import Path

from pid_ssl.layout import parse_run_id, runs_dir, tables_dir

COMMIT = "66c5c64"  # the last commit holding the old protocol's cpu runs
METRICS = ("linear_top1", "knn20_top1", "knn200_top1", "semi1_top1", "semi10_top1", "semi1_linear_top1", "semi10_linear_top1")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def old_rows(repo: Path, commit: str = COMMIT, config: str = "cpu") -> list[dict]:
    "One row per finished run of `config` at `commit`: run_id, setting, seed and METRICS."
    folder = runs_dir("results", config).as_posix()
    files = [f for f in git(repo, "ls-tree", "-r", "--name-only", commit, folder + "/").splitlines() if f.endswith("/metrics.json")]
    rows = []
    for f in sorted(files):
        run = Path(f).parent.name
        m = json.loads(git(repo, "show", f"{commit}:{f}"))
        setting, seed = parse_run_id(run)
        rows.append(dict(run_id=run, setting=setting, seed=seed, **{k: m.get(k) for k in METRICS}))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]), help="the checkout (default: this one)")
    p.add_argument("--commit", default=COMMIT, help=f"the commit holding the old runs (default {COMMIT})")
    p.add_argument("--out", default=None, help="CSV to write (default: results/tables/cpu/old_protocol_metrics.csv)")
    a = p.parse_args(argv)
    repo = Path(a.repo)
    rows = old_rows(repo, a.commit)
    out = Path(a.out) if a.out else repo / tables_dir("results", "cpu") / "old_protocol_metrics.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["run_id", "setting", "seed", *METRICS], lineterminator="\n")
        w.writeheader(); w.writerows(rows)
    print(f"{len(rows)} runs of commit {a.commit} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
