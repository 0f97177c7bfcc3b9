"""The ``kf`` command line (:mod:`kfcli.main`).

Importing this package shortens how long idle OpenMP threads spin before they sleep
(:func:`limit_omp_spin`), before anything imports torch.
"""

from __future__ import annotations

import os

OMP_SPIN = "1000"


def limit_omp_spin() -> None:
    """Set ``GOMP_SPINCOUNT`` to a short spin unless the user set it.

    The CPU build of torch runs its thread pool on GNU OpenMP, whose idle threads
    busy-wait up to 300 000 spins at every barrier before they sleep. Two such processes
    on the same cores (two ``kf`` jobs, or the tests beside a run) then take each other's
    time in spinning. The short spin keeps two jobs on 2 cores within about 2–3× of one
    alone, where the default let them run up to 68× slower, and costs a job alone about
    4% (README, "Speed"; ``python -m benchmarks.omp_spin``). libgomp reads
    the variable when it is loaded, so this only works before torch is first imported;
    other OpenMP runtimes ignore it.
    """
    os.environ.setdefault("GOMP_SPINCOUNT", OMP_SPIN)


limit_omp_spin()
