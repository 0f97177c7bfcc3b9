"""Build of the kfops C++ (and, where possible, CUDA) extension ``kfops._C``.

Install with ``pip install --no-build-isolation -e .`` after torch: the build compiles
against the installed torch and must not fetch another one. CUDA sources are built only
when torch has CUDA and a toolkit is found (``CUDA_HOME``), or with ``FORCE_CUDA=1``.
``KFOPS_NO_EXT=1`` skips the extension (kfops then runs on its pure-PyTorch reference);
``KFOPS_SANITIZE=address`` builds it with AddressSanitizer (see ``.ci/asan``).

A compile or link failure (no compiler, a broken toolkit) does not fail the install: the
package is installed without the extension, says why on stderr, and warns once at run
time. ``KFOPS_REQUIRE_EXT=1`` makes such a failure fatal (CI sets it).
"""

from __future__ import annotations

import glob
import os
import sys

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def _extensions() -> tuple[list, dict]:
    if os.environ.get("KFOPS_NO_EXT") == "1":
        return [], {}
    try:
        import torch
        from torch.utils import cpp_extension as ce
    except ImportError:
        sys.exit(
            "kfops: torch is not importable while building. Install torch first, then "
            "`pip install --no-build-isolation -e .` (or set KFOPS_NO_EXT=1 to skip the "
            "C++ extension)."
        )

    class OptionalBuildExtension(ce.BuildExtension):
        """torch's build, whose failure installs kfops without the extension."""

        def run(self) -> None:
            try:
                super().run()
            except Exception as err:  # compiler missing or failing: install without it
                if os.environ.get("KFOPS_REQUIRE_EXT") == "1":
                    raise
                self.extensions = []
                print(
                    f"kfops: the C++ extension did not build ({type(err).__name__}: {err}); "
                    "installing without it, kfops will run on its pure-PyTorch reference. "
                    "Set KFOPS_REQUIRE_EXT=1 to make this an error.",
                    file=sys.stderr,
                )

        def get_outputs(self) -> list[str]:
            return super().get_outputs() if self.extensions else []

    cpu_sources = ["csrc/kfops.cpp", *sorted(glob.glob("csrc/cpu/*.cpp"))]
    cxx = [
        "-O3",
        "-g0",
        "-fno-math-errno",
        "-fopenmp",
        "-Wall",
        "-Wno-unknown-pragmas",
        "-Wno-psabi",
    ]
    link = ["-fopenmp"]
    if os.environ.get("KFOPS_SANITIZE") == "address":  # AddressSanitizer build for CI
        cxx = [f for f in cxx if not f.startswith(("-O", "-g"))]
        cxx += ["-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer"]
        link += ["-fsanitize=address"]
    include_dirs = [os.path.join(ROOT, "csrc")]
    force = os.environ.get("FORCE_CUDA") == "1"
    use_cuda = force or (torch.cuda.is_available() and ce.CUDA_HOME is not None)
    if use_cuda:
        sources = cpu_sources + sorted(glob.glob("csrc/cuda/*.cu")) + ["csrc/cuda/bindings.cpp"]
        ext = ce.CUDAExtension(
            "kfops._C",
            sources,
            include_dirs=include_dirs,
            define_macros=[("KFOPS_WITH_CUDA", "1")],
            extra_compile_args={"cxx": cxx, "nvcc": ["-O3", "-lineinfo"]},
            extra_link_args=link,
        )
    else:
        ext = ce.CppExtension(
            "kfops._C",
            cpu_sources,
            include_dirs=include_dirs,
            extra_compile_args={"cxx": cxx},
            extra_link_args=link,
        )
    return [ext], {"build_ext": OptionalBuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = _extensions()

setup(
    packages=find_packages(include=["kfops", "kfops.*", "kfcli", "kfcli.*"]),
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
