"""The losses under data parallelism: 2 CPU processes (gloo) must reproduce one process on the concatenated batch.

Each process runs a tiny linear model on its half of the batch, computes the loss (statistics over the global batch
through `pid_ssl.losses.gather_batch`), back-propagates, and averages parameter gradients across processes as DDP
does. Loss values and averaged gradients must equal the single-process run on the whole batch to 1e-5. A naive
gather without autograd is run as a control: its gradients must NOT match, which shows the test can fail. The
per-dimension PID case sends a non-contiguous gradient into the gather's backward, which
`torch.distributed.nn.functional.all_gather` got wrong on gloo (torch 2.14); `gather_batch` must get it right.
"""
import os
import tempfile
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pid_ssl.losses import barlow_twins_loss, gather_batch, vicreg_loss

WORLD, N, D_IN, D_OUT = 2, 24, 6, 10


def _data():
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(N, D_IN, generator=g, dtype=torch.float64)
    x2 = 0.6 * x1 + 0.8 * torch.randn(N, D_IN, generator=g, dtype=torch.float64)
    y = 0.9 * x1 + 0.3 * torch.randn(N, D_IN, generator=g, dtype=torch.float64)
    return x1, x2, y


def _model():
    torch.manual_seed(1)
    return torch.nn.Linear(D_IN, D_OUT).double()


def _naive_bt(z1, z2):
    "Barlow Twins with the global batch gathered WITHOUT autograd (other ranks' rows are constants): wrong grads."
    def gather(z):
        if dist.is_initialized() and dist.get_world_size() > 1:
            parts = [torch.empty_like(z) for _ in range(dist.get_world_size())]
            dist.all_gather(parts, z.detach().contiguous())
            parts[dist.get_rank()] = z
            return torch.cat(parts)
        return z
    z1, z2 = gather(z1), gather(z2)
    n = z1.shape[0]
    s = lambda z: (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5)
    c = s(z1).T @ s(z2) / n
    off = c.pow(2).sum() - c.diagonal().pow(2).sum()
    return dict(loss=(1 - c.diagonal()).pow(2).sum() + 0.0051 * off)


def _cases():
    cases = dict(bt=lambda z1, z2, y: barlow_twins_loss(z1, z2),
                 bt_recal=lambda z1, z2, y: barlow_twins_loss(z1, z2, lambd=0.02, scale=0.1, rho=0.8, w_inv=2.0),
                 vicreg=lambda z1, z2, y: vicreg_loss(z1, z2),
                 vicreg_solo=lambda z1, z2, y: vicreg_loss(z1, z2, sim=10.0, cov=4.0, var_convention="solo"),
                 naive_bt=lambda z1, z2, y: _naive_bt(z1, z2))
    try:
        from pid_ssl.pid import PIDOptions, pid_objective
        est = lambda: PIDOptions(proj_dim=4, generator=torch.Generator().manual_seed(7))  # a fresh draw every call
        cases["pid_bt"] = lambda z1, z2, y: pid_objective(z1, z2, y, base="bt", beta=0.3, gamma=0.5, estimator=est())
        cases["pid_vicreg_perdim"] = lambda z1, z2, y: pid_objective(z1, z2, y, base="vicreg", beta=0.3, gamma=0.5,
                                                                     estimator=PIDOptions(proj_dim=None, per_dim=True))
    except ImportError:
        pass
    return cases


def _run(model, x1, x2, y):
    "Loss values and parameter gradients of every case on the given (local) rows."
    out = {}
    for name, f in _cases().items():
        model.zero_grad()
        with torch.no_grad(): ty = model(y)
        res = f(model(x1), model(x2), ty)
        res["loss"].backward()
        out[name] = dict(values={k: v.detach().clone() for k, v in res.items()},
                         grads=[p.grad.detach().clone() for p in model.parameters()])
    return out


def _worker(rank, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        torch.set_num_threads(1)
        x1, x2, y = _data()
        rows = slice(rank * N // WORLD, (rank + 1) * N // WORLD)
        res = _run(_model(), x1[rows], x2[rows], y[rows])
        for r in res.values():  # what DDP does to parameter gradients: average over processes
            for g in r["grads"]:
                dist.all_reduce(g); g /= WORLD
        torch.save(res, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_results():
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(_worker, args=(os.path.join(d, "init"), d), nprocs=WORLD, join=True)
        yield [torch.load(Path(d) / f"rank{r}.pt") for r in range(WORLD)]


@pytest.fixture(scope="module")
def single_results():
    return _run(_model(), *_data())


def test_gather_batch_is_identity_without_process_group():
    z = torch.randn(3, 2)
    assert gather_batch(z) is z


def test_ddp_matches_single_process(ddp_results, single_results):
    single = single_results
    names = [k for k in single if k != "naive_bt"]
    assert {"bt", "vicreg"} <= set(names)
    for name in names:
        for rank, res in enumerate(ddp_results):
            for k, v in single[name]["values"].items():
                torch.testing.assert_close(res[name]["values"][k], v, rtol=1e-5, atol=1e-8,
                                           msg=f"{name}/{k} on rank {rank}")
            for g_ddp, g in zip(res[name]["grads"], single[name]["grads"]):
                torch.testing.assert_close(g_ddp, g, rtol=1e-5, atol=1e-8, msg=f"{name} gradient on rank {rank}")


def test_naive_gather_gets_gradients_wrong(ddp_results, single_results):
    "Control: without autograd through the gather the loss value is right but the gradient is not."
    single = single_results["naive_bt"]
    torch.testing.assert_close(ddp_results[0]["naive_bt"]["values"]["loss"], single["values"]["loss"])
    g_ddp, g = ddp_results[0]["naive_bt"]["grads"][0], single["grads"][0]
    assert not torch.allclose(g_ddp, g, rtol=1e-3), "a gather without autograd should not give the right gradient"
