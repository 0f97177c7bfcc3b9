"""The named presets: ``paper`` is the published recipe (appendix A of the paper), field by
field, with none of the ``cpu`` preset's additions switched on."""

from __future__ import annotations

import dataclasses

import pytest

from kfops.kernel_inr import KernelINR, default_kernel_size, make_kernel_model
from kfops.presets import PRIOR_PRESETS, RECON_PRESETS, prior_config, recon_config
from kfops.reconstructor import ReconConfig
from kfops.unet import UNet

# appendix A.2 (patch diffusion) and sec. 4: T = 1000, 128 filters, 64² crops, 600k Adam
# steps at 1e-4 (cosine-annealed in PatchPrior.fit), linear DDPM betas
PUBLISHED_PRIOR = dict(T=1000, hidden=128, crop=64, steps=600_000, lr=1e-4)
# appendix A.3/A.4 and Algorithm 1: every t, 100 iterations at the first t and 20 after,
# Adam 1e-4 cosine-annealed to 1e-5 per t, U-Net 32 -> 512 over 5 levels on the whole
# image, SIREN kernel, both consistency terms, the full method
PUBLISHED_PHASE2 = dict(
    steps=None,
    iters_first=100,
    iters=20,
    lr=1e-4,
    lr_min=1e-5,
    unet_base=32,
    unet_levels=5,
    crop=None,
    final="phase2",
    kernel_model="inr",
    mode="full",
    kernel_term="both",
)
# options added for the cpu preset or for ablations: each must stay at its "as published"
# value in the paper preset
OFF = dict(
    kernel_lr=None,
    kernel_init=0.0,
    sharp_weight=0.0,
    kernel_sparsity=0.0,
    kernel_steps=0,
    kernel_freeze=0,
    kernel_radius_at=0,
    kernel_radius_cv=False,
    resize_check=None,
    restarts=1,
    crops=1,
    crop_kernels="shared",
    kernel_size=None,
    kernel_extent=None,
)


def test_the_paper_prior_is_the_published_recipe():
    cfg = prior_config("paper")
    for key, value in PUBLISHED_PRIOR.items():
        assert getattr(cfg, key) == value, key
    assert (cfg.beta_start, cfg.beta_end) == (1e-4, 0.02)  # DDPM's linear schedule


def test_the_paper_phase2_is_the_published_recipe():
    cfg = recon_config("paper")
    for key, value in {**PUBLISHED_PHASE2, **OFF}.items():
        assert getattr(cfg, key) == value, key
    # T_nd is not published: ours is 400, a noise level the bicubic start survives
    assert 0 < cfg.t_start < PUBLISHED_PRIOR["T"]


def test_the_paper_networks_have_the_published_sizes():
    # A.3: 5 levels, 32 -> 512 channels
    cfg = recon_config("paper")
    unet = UNet(3, base=cfg.unet_base, levels=cfg.unet_levels)
    widths = [m.out_channels for m in unet.modules() if hasattr(m, "out_channels")]
    assert min(widths[:-1]) == 32 and max(widths) == 512
    # A.4: SIREN of 5 layers × 256, ω = 5, a 24×24 kernel at ×4
    assert default_kernel_size(4) == 24
    inr = make_kernel_model("inr", default_kernel_size(4))
    assert isinstance(inr, KernelINR) and inr.omega == 5.0
    assert [lin.out_features for lin in inr.linears] == [256, 256, 256, 256, 1]


@pytest.mark.parametrize("preset", sorted(set(PRIOR_PRESETS) | set(RECON_PRESETS)))
def test_every_preset_names_only_real_options(preset):
    names = {f.name for f in dataclasses.fields(ReconConfig)}
    assert set(RECON_PRESETS[preset]) <= names
    prior_config(preset)  # PriorConfig refuses unknown keys itself
    recon_config(preset)


def test_an_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="unknown preset"):
        recon_config("fast")
    with pytest.raises(ValueError, match="unknown preset"):
        prior_config("fast")
