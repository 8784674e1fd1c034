"""Numbers a test pinned, compared exactly on the CPU kernel path that made them and within stated tolerances elsewhere.

A pin records `pid_ssl.core.kernel_path()` of the process that wrote it (with the thread count the test fixes). On the
same path every number must come out bit-identical: any difference is a change of the code. On another path (another
instruction set: an AVX2 machine against an AVX512 one, or another torch) the same code gives other floats from the first
kernel on, and a number can only be asked to stay within what such a perturbation moves it by. Each test states that per
quantity, as a list of rules (`Rule`): a pattern of keys and what may differ, derived from the differences measured
between two paths (see the test's RULES). A key no rule names is compared exactly.

One kind of number is not bit-reproducible even on one path: dit's I_ccs PID (`label_ccs_*`) solves a maximum-entropy
problem whose result moves in its last digits from one process to the next (the same count table gave 0.11505156 and
0.11505145 in two runs, one thread each; in a full test session, where other tests ran in the same worker first, the
pinned smoke run's moved by 1.1e-3 nats); its rule says how much it may move anywhere (`anywhere`, 0.01 nats).
"""
import math
import re
from dataclasses import dataclass

from pid_ssl.core import kernel_path


@dataclass(frozen=True)
class Rule:
    "How far a key's value may move off the pinning path: |now - pinned| <= atol + rtol*|pinned| (+ k binomial SEs)."
    pattern: str  # regular expression matched (re.search) against the key
    rtol: float = 0.0  # relative tolerance
    atol: float = 0.0  # absolute tolerance
    binomial_k: float = 0.0  # for an accuracy in %: k standard errors of an accuracy on n images (n from `n_of`)
    choice: bool = False  # a hyper-parameter picked by a validation score: any value (the scores it picks by move)
    anywhere: float = 0.0  # absolute tolerance on the pinning path too: a quantity no path reproduces bit for bit
    why: str = ""  # the measured difference it covers

    def allows(self, pinned, now, n: int | None) -> bool:
        if self.choice: return True
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (pinned, now)): return pinned == now
        if not (math.isfinite(pinned) and math.isfinite(now)): return pinned == now or (math.isnan(pinned) and math.isnan(now))
        tol = self.atol + self.rtol * abs(pinned)
        if self.binomial_k:
            assert n, f"{self.pattern}: an accuracy rule needs its number of images"
            p = min(max(pinned / 100, 1 / n), 1 - 1 / n)  # at 0 % or 100 % the SE of one image's flip, not 0
            tol += self.binomial_k * 100 * math.sqrt(p * (1 - p) / n)
        return abs(now - pinned) <= tol


def same_path(pinned_path: str | None) -> bool:
    "Whether this process computes on the kernel path a pin recorded."
    return pinned_path is not None and pinned_path == kernel_path()


def differences(pinned: dict, now: dict, skip=(), prefix: str = "") -> dict:
    "{key: (pinned, now)} for every key whose value is not identical (keys in only one of them included)."
    return {prefix + k: (pinned.get(k, "<missing>"), now.get(k, "<missing>")) for k in sorted(set(pinned) | set(now))
            if k not in skip and (k not in pinned or k not in now or pinned[k] != now[k])}


def outside(diff: dict, rules: list, n_of=lambda key: None) -> dict:
    "The differences no rule allows: {key: (pinned, now, the rule or 'exact')}; a key's first matching rule decides."
    bad = {}
    for key, (a, b) in diff.items():
        name = key.rsplit(".", 1)[-1]
        rule = next((r for r in rules if re.search(r.pattern, name)), None)
        if rule is None or "<missing>" in (a, b) or not rule.allows(a, b, n_of(name)):
            bad[key] = (a, b, rule.pattern if rule else "exact")
    return bad


def check(pinned: dict, now: dict, pinned_path: str | None, rules: list, n_of=lambda key: None, skip=(), prefix=""):
    "Assert `now` equals `pinned` exactly on the pinning path, else within `rules`; returns the differences seen."
    diff = differences(pinned, now, skip, prefix)
    if same_path(pinned_path):
        bad = outside(diff, [Rule(r.pattern, atol=r.anywhere, why=r.why) for r in rules if r.anywhere])
        assert bad == {}, f"on the pinning kernel path ({pinned_path}) these changed (pinned, now, rule): {bad}"
    else:
        bad = outside(diff, rules, n_of)
        assert bad == {}, (f"kernel path {kernel_path()!r}, pinned on {pinned_path!r}: outside the stated tolerances "
                           f"(pinned, now, rule): {bad}")
    return diff


HOLDOUT = dict(linear=0.1, semi=0.2)  # pid_ssl.evaluate's held-out shares: select_linear_probe, semi_supervised


def accuracy_images(key: str, metrics: dict, pretrain_images: int | None = None) -> int | None:
    "How many images an accuracy (in %) of a run's metrics or history is measured on."
    if m := re.match(r"semi(\d+)_(linear_)?val_top1$", key):
        return max(1, round(metrics[f"semi{m[1]}_labels"] * HOLDOUT["linear" if m[2] else "semi"]))
    if key == "linear_val_top1": return max(1, round(metrics["n_train"] * HOLDOUT["linear"]))
    if key == "online_probe_top1" and pretrain_images: return pretrain_images  # a history row: the epoch's training views
    return metrics.get("n_test") if re.search(r"top[15]$", key) else None
