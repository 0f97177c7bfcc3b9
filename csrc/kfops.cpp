// Schemas of every kfops operator, in one place. Backends live in csrc/cpu (CPU) and
// csrc/cuda (CUDA); autograd and fake (meta) implementations are registered from Python.
#include <torch/library.h>

TORCH_LIBRARY(kfops, m) {
  // y = (x ⊛ k)↓s, evaluated only on the stride-s grid. x: (B, C, H, W); k: (Kh, Kw),
  // (C|1, Kh, Kw) or (B|1, C|1, Kh, Kw). padding: reflect|replicate|circular|zeros|valid.
  m.def("degrade(Tensor x, Tensor k, int s, str padding) -> Tensor");
  // x = A^T y, the exact transpose of degrade for an HR image of size hr_size = [H, W].
  m.def("degrade_adjoint(Tensor y, Tensor k, int s, str padding, int[] hr_size) -> Tensor");
  // dL/dk of L(degrade(x, k)) given gy = dL/dy; returns a tensor of shape kshape.
  m.def("degrade_kernel_grad(Tensor x, Tensor gy, int s, str padding, int[] kshape) -> Tensor");
  // d/dx of the Charbonnier TV sum sqrt(dx^2 + dy^2 + smooth^2) (forward differences) of
  // every plane of x (B, C, H, W); same shape as x.
  m.def("tv_grad(Tensor x, float smooth) -> Tensor");
}
