"""The PID weights of configs/cpu.yaml follow its stated rule from the committed pilot runs.

Rule (stated in the config): each PID term's gradient on the embeddings is 20 % of the base loss's, at the median over
the epochs of the baseline's pilot run: beta = 0.2 x median(grad_base_norm / grad_red_norm), gamma = 0.2 x
median(grad_base_norm / grad_syn_norm), from results/runs/cpu_pilot_t2/<family>-s0/history.jsonl. The config holds
them rounded to two significant digits.
"""
import json
import statistics
from pathlib import Path

import pytest

from pid_ssl.config import load_config

ROOT = Path(__file__).resolve().parents[1]
SHARE = 0.2


def _sized(family: str) -> tuple[float, float]:
    rows = [json.loads(l) for l in (ROOT / "results/runs/cpu_pilot_t2" / f"{family}-s0" / "history.jsonl").read_text().splitlines()]
    med = lambda k: statistics.median(r["grad_base_norm"] / r[k] for r in rows)
    return SHARE * med("grad_red_norm"), SHARE * med("grad_syn_norm")


@pytest.mark.parametrize("family", ["bt", "vicreg"])
def test_pid_weights_follow_the_stated_share(family):
    beta, gamma = _sized(family)
    settings = load_config(ROOT / "configs" / "cpu.yaml").data["settings"]
    arms = [s for s in settings if s.startswith(family + "_pid") or s == f"{family}_staged"]
    assert len(arms) == (5 if family == "bt" else 3)
    for arm in arms:
        kind = arm.split("_", 1)[1]
        if kind != "pid_syn": assert settings[arm]["beta"] == pytest.approx(beta, rel=0.01), arm
        if kind != "pid_red": assert settings[arm]["gamma"] == pytest.approx(gamma, rel=0.01), arm
        assert ("beta" in settings[arm]) == (kind != "pid_syn") and ("gamma" in settings[arm]) == (kind != "pid_red"), arm
