"""Benchmark SR methods on synthetic blind-SR data, as in the paper's Table 2 and Figs. 3, 5.

Protocol: each HR image is centre-cropped (:func:`center_crop`), degraded with each kernel
of a set by ``kfops.degrade(hr, k, scale, "reflect")`` (noise-free, kept in float, clamped
to [0, 1]), and every method super-resolves the LR image. Each kernel is first moved so
that this degradation is bicubic-aligned (:func:`kfops.kernels.align_kernel`; the moved
kernel is the true kernel from then on), unless ``align_kernels`` is off: a kernel off
that position shifts the LR image by a fraction of an HR pixel, which no blind method can
tell from a shift of the image, so its PSNR would measure the shift. Scores are :func:`psnr_y` /
:func:`ssim_y` against the HR crop (default 5% border crop) and, for methods that return
a kernel, :func:`kernel_ncc` against the true kernel.

Methods live in a registry (:func:`register_method`). A method is ``fn(lr, scale, context)
-> (sr, kernel)`` with ``lr`` a ``(1, C, h, w)`` float32 tensor in [0, 1] on the run's
device, ``sr`` ``(1, C, s·h, s·w)`` (clamped to [0, 1] before scoring) and ``kernel`` a
``(Kh, Kw)`` estimate or ``None``. ``context`` holds ``gt_kernel`` (float64 ``(K, K)`` on
the CPU; only the oracle ``gt-backprojection`` may look at it), ``seed`` (an int fixed by
the run seed and the job, so resumed runs see the same value; ``torch.manual_seed(seed)``
is also called before each job), ``image``, ``kernel`` (names), ``device`` and
``hr_size``. Built in: ``bicubic`` and ``gt-backprojection``. Other modules register more
(e.g. the blind ``kfops`` method) by calling :func:`register_method`; the command line
imports them with ``kf bench --plugin MODULE``, and installed packages can expose a
zero-argument registering function under the entry-point group ``kfops.bench_methods``.

Output folder (:func:`run_benchmark`):

* ``results.csv``: header :data:`RESULT_FIELDS`, one row per image × kernel × method.
  ``image`` is the file stem, ``crop`` the requested crop (0 = whole image), ``psnr_y``
  (``inf`` for a perfect result), ``ssim_y``, ``kernel_ncc`` (empty when the method
  returns no kernel) and ``seconds`` (wall time of the method call). Rows are appended and
  flushed one by one; a run skips the jobs whose (image, kernel, method, scale, crop) row
  exists, so an interrupted run resumes where it stopped.
* ``summary.md``: mean PSNR / SSIM per method, overall and per kernel group (levin, stress,
  gauss, other), mean kernel NCC and time, then PSNR / SSIM per kernel; over this run's jobs.
* ``kernels.png``: true kernels (top row) and each kernel-estimating method's estimate for
  the first image (one row per method). ``crops.png``: for the first ``figure_rows``
  image × kernel pairs, a zoomed patch of the LR (nearest), each method's result and HR.
* ``kernels/<image>__<kernel>__<method>.npy`` (estimated kernels) and
  ``crops/<image>__<kernel>__<LR|HR|method>.png`` (the figure patches): the figures are
  redrawn from these, so a resumed run draws them without recomputing. They hold the
  latest computed setting: use one output folder per scale / crop.
* With ``save_images``: ``images/<image>__<kernel>__<LR|method>.png``.
"""

from .inputs import KERNEL_GROUPS, center_crop, kernel_group, list_images, load_hr, load_kernel_set
from .methods import (
    DEFAULT_METHODS,
    ENTRY_POINT_GROUP,
    Method,
    MethodFn,
    available_methods,
    get_method,
    register_method,
    unregister_method,
)
from .results import RESULT_FIELDS, read_results
from .runner import run_benchmark

__all__ = [
    "DEFAULT_METHODS",
    "ENTRY_POINT_GROUP",
    "KERNEL_GROUPS",
    "RESULT_FIELDS",
    "Method",
    "MethodFn",
    "available_methods",
    "center_crop",
    "get_method",
    "kernel_group",
    "list_images",
    "load_hr",
    "load_kernel_set",
    "read_results",
    "register_method",
    "run_benchmark",
    "unregister_method",
]
