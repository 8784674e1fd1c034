"""The pilot of the PID term's variants (configs/cpu_pid_pilot.yaml), read by its criterion: the paper notebook on the
committed runs gives the numbers an independent reading of the run files gives."""
import json
import statistics
from pathlib import Path

import pandas as pd

from pid_ssl.reproduce import run_notebook

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "results" / "runs"


def _check(run: Path) -> dict: return json.loads((run / "manipulation.json").read_text())


def test_pilot_table_matches_the_run_files(tmp_path):
    out = tmp_path / "out"
    run_notebook(ROOT / "nbs" / "paper" / "table_pilot.ipynb", tmp_path / "table_pilot.ipynb",
                 dict(results_dir=str(ROOT / "results"), config="cpu_pid_pilot", out_dir=str(out)))
    table = pd.read_csv(out / "table_pilot.csv").set_index("run_id")
    finished = sorted(p.parent.name for p in (RUNS / "cpu_pid_pilot").glob("*/metrics.json"))
    assert sorted(table.index) == finished and len(finished) >= 2
    for run_id in finished:  # independently: the manipulation check's numbers against the three reference seeds'
        fam = run_id.split("_")[0]
        ref = [_check(RUNS / "cpu" / f"{fam}_recal-s{s}") for s in range(3)]
        ref_metrics = [json.loads((RUNS / "cpu" / f"{fam}_recal-s{s}" / "metrics.json").read_text()) for s in range(3)]
        mine = _check(RUNS / "cpu_pid_pilot" / run_id)
        acc = json.loads((RUNS / "cpu_pid_pilot" / run_id / "metrics.json").read_text())["linear_val_top1"]
        row = table.loc[run_id]
        d_red = mine["view_redundancy"] - statistics.mean(r["view_redundancy"] for r in ref)
        sd_red = statistics.stdev(r["view_redundancy"] for r in ref)
        d_syn = mine["view_synergy"] - statistics.mean(r["view_synergy"] for r in ref)
        sd_syn = statistics.stdev(r["view_synergy"] for r in ref)
        d_acc = acc - statistics.mean(m["linear_val_top1"] for m in ref_metrics)
        assert abs(row.d_red - d_red) < 1e-9 and abs(row.red_threshold + 2 * sd_red) < 1e-9, run_id
        assert abs(row.d_syn - d_syn) < 1e-9 and abs(row.syn_threshold - 2 * sd_syn) < 1e-9, run_id
        assert abs(row.d_linear_val - d_acc) < 1e-9, run_id
        assert bool(row.moved) == (d_red < -2 * sd_red or d_syn > 2 * sd_syn), run_id
        assert bool(row.degenerate) == (d_acc < -1.0), run_id
    choice = (out / "table_pilot_choice.md").read_text()
    assert "is chosen" in choice or "No variant moves" in choice
