"""The PID weights of configs/cpu.yaml follow its stated rule from the committed runs.

Rule (stated in the config): each PID term's gradient on the embeddings is a share s of the gradient of the base loss
it is added to, at the median over the epochs of the seed-0 run of that base objective:
    beta = s x median(grad_base_norm / grad_red_norm), gamma = s x median(grad_base_norm / grad_syn_norm),
from results/runs/cpu/<family>_recal-s0/history.jsonl for the arms on the re-calibrated loss (_pid, _staged, _pid_red,
_pid_syn, and the dose-response arms <family>_pid_s<s>) and results/runs/cpu/<family>-s0/history.jsonl for _pid_base;
s = 0.2 for the main arms. The config holds them rounded to three significant digits.
"""
import json
import statistics
from pathlib import Path

import pytest

from pid_ssl.study import load_config
from pid_ssl.methods import split_method

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = load_config(ROOT / "configs" / "cpu.yaml").data["settings"]


def _sized(run: str, share: float) -> tuple[float, float]:
    rows = [json.loads(l) for l in (ROOT / "results/runs/cpu" / run / "history.jsonl").read_text().splitlines()]
    med = lambda k: statistics.median(r["grad_base_norm"] / r[k] for r in rows)
    return share * med("grad_red_norm"), share * med("grad_syn_norm")


def _share(setting: str) -> float:
    "The share a setting is sized to: 0.2, or the number after '_s' of a dose-response arm."
    return float(setting.rsplit("_s", 1)[1]) if "_pid_s" in setting and setting.rsplit("_s", 1)[1][0].isdigit() else 0.2


PID_ARMS = [s for s, v in SETTINGS.items() if split_method(v["method"])[1] not in ("", "recal")]


def test_every_pid_arm_and_dose_is_covered():
    assert len(PID_ARMS) == 5 + 3 + 6  # five BT and three VICReg arms, three doses of each family's _pid
    assert sorted({_share(s) for s in PID_ARMS}) == [0.05, 0.2, 0.5, 1.0]


@pytest.mark.parametrize("setting", PID_ARMS)
def test_pid_weights_follow_the_stated_share(setting):
    method = SETTINGS[setting]["method"]
    family, kind = split_method(method)
    beta, gamma = _sized(f"{family}-s0" if kind == "pid_base" else f"{family}_recal-s0", _share(setting))
    arm = SETTINGS[setting]
    assert ("beta" in arm) == (kind != "pid_syn") and ("gamma" in arm) == (kind != "pid_red"), setting
    if kind != "pid_syn": assert arm["beta"] == pytest.approx(beta, rel=0.005), setting
    if kind != "pid_red": assert arm["gamma"] == pytest.approx(gamma, rel=0.005), setting
