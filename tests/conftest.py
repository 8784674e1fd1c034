"""Test-session settings: one torch thread per pytest-xdist worker; OpenMP threads that sleep when they wait; the
wall-clock limit of a test's waits.

With `pytest -n 2` on a 2-core machine, two workers that each start 2 intra-op threads fight over the cores and
small ops run many times slower; one thread per worker keeps both cores busy without contention. Without xdist a test
keeps torch's threads, and on cores other work keeps busy spinning OpenMP threads make a 2-thread step about 20 times
slower (pid_ssl.commands, "Threads that sleep when they wait"): OMP_WAIT_POLICY=PASSIVE, set before torch loads here
and inherited by every process a test starts, changes how threads wait, not the numbers.

`HANG_S` bounds every wait of a test for work (a subprocess, a checkpoint to appear): a guard against a hung process,
not a speed check. Measured on this project's 2 cores under other agents' work (load average 6 to 13), the work took 4
to 10 times its quiet time (the pinned smoke run 123 s at load 2, 502 s at load 8; a run folder's refusal 0.7 s, then 11 to 23 s); the
slowest waited-on step, the GPU check's smoke (about a minute quiet), ran past 480 s on busy cores. 1 800 s is more
than three times that; PID_SSL_TEST_HANG_S changes it.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
HANG_S = float(os.environ.get("PID_SSL_TEST_HANG_S", "1800"))

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    torch.set_num_threads(1)
