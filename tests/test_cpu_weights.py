"""The PID weights of configs/cpu.yaml follow the one sizing rule, `pid_ssl.report.dose.pid_weights`, from the committed runs.

Each PID setting's weights are recomputed from the seed-0 history of the run that sizes it (`sizing_setting`) at the share
it is sized to (`sized_share`); the config holds them rounded to three significant digits.
"""
from pathlib import Path

import pandas as pd
import pytest

from pid_ssl.files import read_jsonl
from pid_ssl.layout import RunFolder, run_dir
from pid_ssl.study import load_config
from pid_ssl.methods import split_method
from pid_ssl.report.dose import pid_weights, sized_share, sizing_setting

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = load_config(ROOT / "configs" / "cpu.yaml").data["settings"]
PID_ARMS = [s for s, v in SETTINGS.items() if split_method(v["method"])[1] not in ("", "recal")]


def _sized(setting: str) -> tuple[float, float]:
    "(β, γ) of a PID setting by the rule, from the committed history of the run that sizes it."
    base = sizing_setting(SETTINGS[setting]["method"])
    hist = pd.DataFrame(read_jsonl(RunFolder(run_dir(ROOT / "results", "cpu", base, 0)).history))
    return pid_weights(hist, sized_share(setting))


def test_every_pid_arm_and_dose_is_covered():
    assert len(PID_ARMS) == 5 + 3 + 6  # five BT and three VICReg arms, three doses of each family's _pid
    assert sorted({sized_share(s) for s in PID_ARMS}) == [0.05, 0.2, 0.5, 1.0]


@pytest.mark.parametrize("setting", PID_ARMS)
def test_pid_weights_follow_the_rule(setting):
    kind = split_method(SETTINGS[setting]["method"])[1]
    beta, gamma = _sized(setting)
    arm = SETTINGS[setting]
    assert ("beta" in arm) == (kind != "pid_syn") and ("gamma" in arm) == (kind != "pid_red"), setting
    if kind != "pid_syn": assert arm["beta"] == pytest.approx(beta, rel=0.005), setting
    if kind != "pid_red": assert arm["gamma"] == pytest.approx(gamma, rel=0.005), setting

