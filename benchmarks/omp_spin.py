"""How long OpenMP's idle threads spin (``GOMP_SPINCOUNT``) against how a job runs alone and
beside a second copy of itself on the same cores.

    python -m benchmarks.omp_spin --spins 300000,1000 --repeats 3 --out omp_spin.tsv

Two workloads, each run in a fresh process (libgomp reads the variable when it loads):
``prior``, training steps of the ``cpu`` preset's patch-diffusion network on 64² crops of
a 128² image, and ``phase2``, Phase 2's inner step at the ``cpu`` preset's sizes (a U-Net of
base width 16 over 4 levels, the frozen 32-filter prior between its two applications, a
batch of two 160² crops, forward, backward and Adam). For every spin count: one process
alone, then two at once. 300000 is libgomp's default. Rows appended to ``--out``,
tab-separated: workload, spin count, ``alone`` or ``pair``, repeat, ms per step (one row
per process). Nothing else may run while it measures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

_SCRIPT = """
import sys, time, torch
torch.set_num_threads({threads})
which = sys.argv[1]
img = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
if which == "prior":
    from kfops.diffusion.prior import PatchPrior
    from kfops.presets import prior_config
    p = PatchPrior(prior_config("cpu"))
    p.fit(img, steps=20, progress=False)
    n = 300
    t0 = time.perf_counter()
    p.fit(img, steps=n, progress=False)
else:
    from kfops.diffusion.pdnet import PDNet
    from kfops.unet import UNet
    torch.manual_seed(0)
    u, pd = UNet(3, 16, 4), PDNet(3, 32).requires_grad_(False)
    x = torch.rand(2, 3, 160, 160)
    t = torch.full((2,), 100)
    opt = torch.optim.Adam(u.parameters(), 1e-3)
    def step():
        loss = u(pd(u(x), t)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for _ in range(3):
        step()
    n = 30
    t0 = time.perf_counter()
    for _ in range(n):
        step()
print(1000 * (time.perf_counter() - t0) / n)
"""


def _run(workload: str, spin: int, copies: int, threads: int) -> list[float]:
    env = dict(os.environ, GOMP_SPINCOUNT=str(spin))
    code = _SCRIPT.format(threads=threads)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, workload],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(copies)
    ]
    out = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"{workload} with GOMP_SPINCOUNT={spin} failed")
    return [float(o.strip().splitlines()[-1]) for o in out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spins", default="300000,1000", help="comma-separated spin counts")
    ap.add_argument("--workloads", default="prior,phase2")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    spins = [int(s) for s in args.spins.split(",")]
    rows = []
    for r in range(args.repeats):
        for workload in args.workloads.split(","):
            for spin in spins:
                for mode, copies in (("alone", 1), ("pair", 2)):
                    start = time.perf_counter()
                    for ms in _run(workload, spin, copies, args.threads):
                        rows.append((workload, spin, mode, r, ms))
                        print(f"{workload:7s} spin {spin:>7d} {mode:5s} {ms:8.1f} ms/step")
                    if time.perf_counter() - start > 600:
                        print("  (over 10 minutes: fewer repeats or spin counts?)")
    if args.out is not None:
        with open(args.out, "a") as fh:
            for row in rows:
                fh.write("\t".join(str(v) for v in row) + "\n")
    print("\nmean ms per step (pair: both processes):")
    for workload in args.workloads.split(","):
        for spin in spins:
            for mode in ("alone", "pair"):
                v = [ms for w, s, m, _, ms in rows if (w, s, m) == (workload, spin, mode)]
                print(f"{workload:7s} spin {spin:>7d} {mode:5s} {sum(v) / len(v):8.1f}")


if __name__ == "__main__":
    main()
