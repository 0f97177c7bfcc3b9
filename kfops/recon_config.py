"""Phase-2 settings (:class:`ReconConfig`): Algorithm 1's schedule, networks and
learning rates, the ablation switches of the paper's Tables 3-4, and the choices of the
``cpu`` preset (where Phase 2 looks, the kernel's size and resize checks, the final step)
with what each costs or gains in ``benchmarks/RESULTS.md``. :func:`kfops.presets.recon_config`
gives the named presets."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .consensus import CONSENSUS_RULES
from .crops import CROP_RULES
from .kernels import RESIZE_METHODS

__all__ = ["FINALS", "MODES", "ReconConfig"]

MODES = ("dip", "unet_only", "pd_unet", "full")
FINALS = ("phase2", "backproject", "tv")


@dataclass
class ReconConfig:
    """Phase-2 settings. ``t_start`` is T_nd; ``t_end`` the last timestep visited (0 = as
    published; > 0 ends the reverse diffusion while the prior still denoises, for runs that
    keep only the kernel); ``steps`` the number of timesteps visited (None = every t from
    t_start to t_end, as published); ``kernel_lr`` the kernel model's
    peak learning rate (None = ``lr``, as published; annealed by the same factor as
    ``lr``); ``kernel_init`` σ > 0 (HR pixels at ×4, scaled by s/4): before each run the
    kernel model is fitted to an isotropic Gaussian of that σ at the aligned centre
    (:func:`kfops.algorithm1.fit_kernel_model`; 0 = the model's own initialisation, as
    published: a SIREN starts as an almost flat kernel over its whole grid); ``kernel_extent`` the
    half-width of the kernel INR's coordinate grid (None =
    :func:`kfops.kernel_inr.inr_extent`: the paper's [−1, 1] for 24 taps, the same pitch
    per HR pixel for other sizes); ``kernel_steps`` the number of Adam steps taken on the
    kernel model alone after every joint step, with that step's U-Net outputs held fixed
    (0 = as published; cheap, as they run no network but the INR); ``kernel_radius_at``
    m > 0: at the end of a run the kernel is resampled to the RMS radius it had after its
    m-th timestep, its final shape kept (:func:`kfops.kernels.dilate_kernel`; the
    Phase-2 image, when it is the output, is not redone; 0 = as published: at CPU scale
    the radius shrinks along the run while the shape improves, benchmarks/RESULTS.md);
    ``kernel_radius_cv`` keeps that resampled kernel only when it predicts held-out LR
    pixels better than the final kernel (:func:`kfops.kernel_check.cv_error` on the luma
    of the LR image, its most textured 128² crop when larger, with the final step's
    weights; skipped, and the final kernel kept, once a deadline has passed);
    ``resize_check`` = 'bicubic', 'bilinear' or 'area': once the kernel is chosen, the blur
    of that ordinary ×s downscale (:func:`kfops.kernels.resize_filter`) replaces it where
    it predicts held-out LR pixels better (the same cross-validation; skipped past a
    deadline, and when the Phase-2 image is the output, as that image was made with the
    estimate): for an image that was only resized, where the estimates come out too wide
    (None = as published); ``resize_gate`` g: that check only where the LR image is as
    sharp as a plain downscale can be, its blur score
    (:func:`kfops.blur_metric.blur_effect`, luma, 0 sharp to 1 blurred) below g (None =
    wherever ``resize_check`` is set); ``resize_max_radius`` R: nor where the estimate's RMS
    radius (:func:`kfops.consensus.kernel_spread`) is R·s/4 HR pixels or more, a blur
    larger than a plain downscale leaves (None = whatever the radius); ``resize_mean`` m > 0:
    at scales s ≥ m the check weighs a third model, the mean of the final images of the
    estimate and of the filter (:func:`kfops.kernel_check.resize_choice`), and where that
    predicts held-out pixels best the output is that mean and the kernel stays the
    estimate (0 = two candidates at every scale); ``kernel_floor``: the estimate that
    reaches the final step (not a resize filter) loses its constant pedestal, the median
    of its outermost ring of taps (:func:`kfops.kernels.remove_floor`; False = as
    published);
    ``grad_weight`` w > 0 adds w × the MSEs of the consistency residual's horizontal and
    vertical differences to each consistency term, weighting the residual's high
    frequencies, where the kernel's shape shows (0 = as published; at 1 and 4 it pulled
    the kernel towards no blur on most cases, benchmarks/RESULTS.md);
    ``sharp_weight`` w > 0 adds w × the normalised gradient sparsity
    (:func:`kfops.sparsity.normalized_sparsity`) of every U-Net output to the loss, an image
    prior that pulls towards sharp estimates and so against kernels that are too small
    (0 = as published); ``kernel_sparsity`` w > 0 adds w × Σ √k over the kernel's taps
    (:func:`kfops.sparsity.kernel_sqrt_sparsity`), a prior towards fewer, stronger taps
    (0 = as published); ``kernel_term`` = 'both' (as published) lets both consistency
    terms train the kernel, 'second' only the term of the U-Net output after the prior
    (the first term still trains the U-Net; in ``dip`` mode, with one term, no change);
    ``kernel_freeze`` the number of final timesteps in which the kernel is held and only
    the U-Net learns (0 = as published; in ``dip`` mode as many iterations as those
    timesteps would take; a run whose image is not kept stops there instead); ``restarts``
    the number of independent runs of Algorithm 1 (fresh networks, fresh noise, drawn in
    turn from the generator) whose kernels are combined by the ``consensus`` rule
    (:func:`kfops.consensus.consensus_kernel`) before the final step, or, with
    ``consensus='average'``, whose final images (each made with its own kernel, after its
    own resize check) are averaged (1 = as published; each costs a full run); ``crop`` an LR
    crop (pixels) on which the kernel is estimated (None = the whole image), chosen by
    ``crop_rule`` (:func:`kfops.crops.select_crop`), or ``crops`` disjoint crops that share
    the kernel (a batch, :func:`kfops.crops.select_crops`); ``crop_fill``: where fewer than
    ``crops`` fit, one crop of ⌈crop·√crops⌉ instead, as many LR pixels as the crops would
    have had (:func:`kfops.crops.phase2_crops`);
    or, with ``crop_kernels='each'``, crops that each get a kernel model of their own (the same
    U-Net and cost; the ``consensus`` rule picks among their kernels, as among restarts);
    ``final`` = 'phase2' (return the Phase-2 image; needs crop=None),
    'backproject' (SR of the whole image with the estimated kernel, Tikhonov damping
    ``final_eps``: an estimated kernel is uncertain, so it is damped 10× more than
    back-projection's default for a known kernel) or 'tv' (that back-projection refined
    by ``final_iters`` Adam steps of peak size ``final_lr`` under a Charbonnier TV prior of
    weight ``final_tv``, :func:`kfops.nonblind.tv_refine`). ``final_eps`` and ``final_tv``
    are set for ×4 and scaled by 16/s² at scale s (:meth:`final_weights`);
    ``final_noise_ref`` σ_r: the TV weight × (1 + (σ/σ_r)²) for an LR image whose noise
    level (:func:`kfops.noise.noise_sigma`) is σ, in the final step and in the checks that
    use its weights (None = the weight as it is, for noise-free images);
    ``final_jpeg_ref`` q_r: that factor + q̄/q_r for an LR image read from a JPEG whose
    low-frequency luma step is q̄ (:func:`kfops.jpeg.quant_step`, passed to
    :meth:`kfops.Reconstructor.run`; None = JPEG artefacts are not considered)."""

    t_start: int = 400
    t_end: int = 0
    steps: int | None = None
    iters_first: int = 100
    iters: int = 20
    lr: float = 1e-4
    lr_min: float = 1e-5
    kernel_lr: float | None = None
    kernel_init: float = 0.0
    unet_base: int = 32
    unet_levels: int = 5
    kernel_size: int | None = None
    kernel_extent: float | None = None
    kernel_model: str = "inr"
    mode: str = "full"
    com_weight: float = 1e-3
    sharp_weight: float = 0.0
    grad_weight: float = 0.0
    kernel_sparsity: float = 0.0
    kernel_steps: int = 0
    kernel_freeze: int = 0
    kernel_radius_at: int = 0
    kernel_radius_cv: bool = False
    resize_check: str | None = None
    resize_gate: float | None = None
    resize_max_radius: float | None = None
    resize_mean: int = 0
    kernel_floor: bool = False
    restarts: int = 1
    consensus: str = "widest"
    crop: int | None = None
    crop_rule: str = "energy"
    crops: int = 1
    crop_fill: bool = False
    crop_kernels: str = "shared"
    kernel_term: str = "both"
    final: str = "phase2"
    final_eps: float = 1e-2
    final_tv: float = 1e-3
    final_iters: int = 100
    final_lr: float = 4e-3
    final_noise_ref: float | None = None
    final_jpeg_ref: float | None = None
    max_recoveries: int = 3
    extra: dict = field(default_factory=dict)

    def final_weights(
        self, scale: int, noise: float = 0.0, jpeg_step: float = 0.0
    ) -> tuple[float, float]:
        """(damping, TV weight) of the final step at ``scale`` for an LR image of noise
        level ``noise`` (standard deviation, [0, 1] units), read from a JPEG whose
        low-frequency luma step is ``jpeg_step`` (0 for lossless input; [0, 1] units,
        :func:`kfops.jpeg.quant_step`): ``final_eps`` and ``final_tv`` ×
        16/s². AAᵀ maps a constant LR image c to about c/s², so the data term's curvature
        falls as 1/s² while a per-HR-pixel prior's does not; the scaling keeps their balance,
        tuned at ×4, the same at every scale (measured at ×2, ×3: benchmarks/RESULTS.md).
        With ``final_noise_ref`` σ_r set, the TV weight is further × (1 + (noise/σ_r)²):
        the data term of a MAP estimate weighs 1/σ², so the prior's share grows as σ²,
        on top of the weight that noise-free images need against kernel errors. With
        ``final_jpeg_ref`` q_r set, jpeg_step/q_r is added to that factor: JPEG's error is
        not white noise (mostly lost detail, blocks and ringing), and the best factor,
        measured at qualities 30–95, grew about linearly with the step, not as its square
        (benchmarks/RESULTS.md, "Noise")."""
        for name, value in (("noise", noise), ("jpeg_step", jpeg_step)):
            if not (value >= 0.0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite level >= 0, got {value!r}")
        norm = 16.0 / float(scale) ** 2
        factor = 1.0
        if self.final_noise_ref is not None:
            factor += (noise / self.final_noise_ref) ** 2
        if self.final_jpeg_ref is not None:
            factor += jpeg_step / self.final_jpeg_ref
        return self.final_eps * norm, self.final_tv * norm * factor

    @property
    def image_used(self) -> bool:
        """Whether the Phase-2 image is the output (else only the kernel is kept)."""
        return self.final == "phase2" and self.crop is None

    def run_iterations(self) -> int:
        """Joint iterations of one run of Algorithm 1 (a run whose image is not kept stops
        when its kernel is held: the rest would change nothing that is kept)."""
        return self.schedule_iterations() if self.image_used else self.kernel_iterations()

    def schedule_iterations(self) -> int:
        """Joint iterations of every timestep of one run (the learning-rate schedule of
        ``dip`` mode spans them)."""
        return self.iters_first + max(self._timesteps() - 1, 0) * self.iters

    def _timesteps(self) -> int:
        return self.t_start - self.t_end + 1 if self.steps is None else self.steps

    def kernel_iterations(self) -> int:
        """Joint iterations of one run before the kernel is held (``kernel_freeze``)."""
        n = self._timesteps() - self.kernel_freeze
        return 0 if n <= 0 else self.iters_first + (n - 1) * self.iters

    def total_iterations(self) -> int:
        """Joint iterations of Phase 2, all restarts."""
        return self.run_iterations() * self.restarts

    def validate(self) -> None:
        """Raise ValueError for a setting outside its range or list (every
        :class:`kfops.Reconstructor` calls this)."""
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; expected one of {MODES}")
        if self.final not in FINALS:
            raise ValueError(f"unknown final {self.final!r}; expected one of {FINALS}")
        if not isinstance(self.crops, int) or self.crops < 1:
            raise ValueError(f"crops must be an integer >= 1, got {self.crops!r}")
        for name in ("kernel_freeze", "kernel_radius_at", "t_end", "resize_mean"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        gw = self.grad_weight
        if not (isinstance(gw, (int, float)) and 0 <= gw < math.inf):
            raise ValueError(f"grad_weight must be finite and >= 0, got {gw!r}")
        if not self.kernel_init >= 0:
            raise ValueError(f"kernel_init must be >= 0, got {self.kernel_init!r}")
        if self.t_end >= self.t_start:
            raise ValueError(f"t_end must be below t_start, got {self.t_end} >= {self.t_start}")
        for name in ("kernel_radius_cv", "crop_fill"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("final_noise_ref", "final_jpeg_ref", "resize_max_radius"):
            ref = getattr(self, name)
            if ref is not None and not (isinstance(ref, (int, float)) and 0 < ref < math.inf):
                raise ValueError(f"{name} must be None or > 0, got {ref!r}")
        gate = self.resize_gate
        if gate is not None and not (isinstance(gate, (int, float)) and 0 < gate <= 1):
            raise ValueError(f"resize_gate must be None or in (0, 1], got {gate!r}")
        if self.resize_check not in (None, *RESIZE_METHODS):
            raise ValueError(
                f"unknown resize_check {self.resize_check!r}; expected None or one of "
                f"{RESIZE_METHODS}"
            )
        if not isinstance(self.restarts, int) or self.restarts < 1:
            raise ValueError(f"restarts must be an integer >= 1, got {self.restarts!r}")
        if self.consensus not in CONSENSUS_RULES:
            raise ValueError(
                f"unknown consensus {self.consensus!r}; expected one of {CONSENSUS_RULES}"
            )
        if self.crop_kernels not in ("shared", "each"):
            raise ValueError(
                f"unknown crop_kernels {self.crop_kernels!r}; expected 'shared' or 'each'"
            )
        if self.kernel_term not in ("both", "second"):
            raise ValueError(
                f"unknown kernel_term {self.kernel_term!r}; expected 'both' or 'second'"
            )
        if self.crop_rule not in CROP_RULES:
            raise ValueError(f"unknown crop_rule {self.crop_rule!r}; expected one of {CROP_RULES}")
