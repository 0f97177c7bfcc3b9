"""Combining several kernel estimates (kfops.consensus)."""

import pytest
import torch

from kfops.consensus import agreement, consensus_kernel, kernel_spread
from kfops.errors import KernelError
from kfops.kernels import anisotropic_gaussian


def _estimates():
    """Two noisy copies of one kernel and one estimate that went astray."""
    g = torch.Generator().manual_seed(0)
    true = anisotropic_gaussian(15, 2.5, 1.0, 0.4)
    noisy = [true + 2e-3 * torch.rand(true.shape, generator=g, dtype=true.dtype) for _ in "ab"]
    astray = anisotropic_gaussian(15, 1.0, 3.0, -0.8)
    return true, [k / k.sum() for k in noisy] + [astray]


def test_agreement_is_a_symmetric_correlation():
    _, ks = _estimates()
    a = agreement(ks)
    assert torch.allclose(a, a.T) and torch.allclose(a.diagonal(), torch.ones(3, dtype=a.dtype))
    assert float(a[0, 1]) > 0.99 > float(a[0, 2])


def test_kernel_spread_is_the_rms_radius():
    delta = torch.zeros(9, 9)
    delta[4, 4] = 1
    assert kernel_spread(delta) == 0
    pair = torch.zeros(9, 9)
    pair[4, 1] = pair[4, 7] = 3.0  # unnormalised: scale does not matter
    assert abs(kernel_spread(pair) - 3.0) < 1e-12
    narrow, wide = anisotropic_gaussian(25, 1.0, 1.0, 0.0), anisotropic_gaussian(25, 2.0, 2.0, 0.0)
    assert abs(kernel_spread(wide) / kernel_spread(narrow) - 2) < 0.05


def test_widest_picks_the_estimate_of_largest_spread():
    ks = [anisotropic_gaussian(21, w, 1.0, 0.3) for w in (1.5, 3.0, 2.0)]
    for order in ([0, 1, 2], [1, 2, 0], [2, 0, 1]):
        kernel, index = consensus_kernel([ks[i] for i in order], "widest")
        assert order[index] == 1 and kernel is ks[1]


@pytest.mark.parametrize("rule", ["medoid", "mean", "median"])
def test_consensus_follows_the_agreeing_runs(rule):
    true, ks = _estimates()
    for order in ([0, 1, 2], [2, 0, 1], [1, 2, 0]):  # the outlier anywhere
        kernel, index = consensus_kernel([ks[i] for i in order], rule)
        assert order[index] in (0, 1)  # the medoid is one of the agreeing pair
        assert abs(float(kernel.sum()) - 1) < 1e-9
        corr = float((kernel * true).sum() / (kernel.norm() * true.norm()))
        if rule == "mean":  # pulled towards the outlier, but still nearer the pair
            assert corr > float(agreement([ks[2], true])[0, 1])
        else:
            assert corr > 0.99


def test_one_estimate_is_returned_as_it_is():
    _, ks = _estimates()
    kernel, index = consensus_kernel(ks[:1], "median")
    assert kernel is ks[0] and index == 0


def test_bad_inputs_are_refused():
    _, ks = _estimates()
    with pytest.raises(ValueError, match="consensus rule"):
        consensus_kernel(ks, "vote")
    with pytest.raises(KernelError, match="differ in size"):
        consensus_kernel([ks[0], torch.ones(5, 5) / 25], "medoid")
    with pytest.raises(KernelError, match="no kernel"):
        consensus_kernel([], "medoid")
    with pytest.raises(KernelError, match="zero energy"):
        consensus_kernel([ks[0], torch.zeros_like(ks[0])], "medoid")


def test_first_keeps_the_first_estimate_whatever_the_others():
    _, ks = _estimates()
    for order in ([0, 1, 2], [2, 0, 1], [1, 2, 0]):
        kernel, index = consensus_kernel([ks[i] for i in order], "first")
        assert index == 0 and kernel is ks[order[0]]
