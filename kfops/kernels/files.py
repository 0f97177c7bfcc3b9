"""Kernel files: reading ``.npy``/``.npz``/``.mat``/image kernels and writing ``.npy`` or
magnified PNG views."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from kfops.errors import KernelError, OutputError
from kfops.io import atomic_write

from .checks import PathLike, _pos_int, normalize, validate_kernel

_MAT_NAMES = ("kernel", "k", "f")
_STACK_NAMES = ("kernels", "kernel", "k", "f")


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        mode = img.mode
        if mode in ("1", "L", "I", "F") or mode.startswith("I;16"):
            return np.asarray(img).astype(np.float64)
        if mode in ("LA", "La"):
            return np.asarray(img.getchannel("L")).astype(np.float64)
        rgb = np.asarray(img.convert("RGB")).astype(np.float64)
    # ITU-R BT.601 luma weights, the same as PIL's "L" conversion, without 8-bit rounding.
    return rgb @ np.array([0.299, 0.587, 0.114])


def _is_hdf5_mat(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(128)
        fh.seek(512)
        sig = fh.read(8)
    return head.startswith(b"MATLAB 7.3") or sig == b"\x89HDF\r\n\x1a\n"


def _import_h5py(path: Path) -> ModuleType:
    try:
        import h5py
    except ImportError:
        raise KernelError(f"{path} is a MATLAB v7.3 (HDF5) file; install h5py to read it") from None
    return h5py


def _numeric(a: object) -> bool:
    return (
        isinstance(a, np.ndarray)
        and a.size > 0
        and (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_)
        and not np.issubdtype(a.dtype, np.complexfloating)
    )


def _read_mat_v5(path: Path) -> dict[str, np.ndarray]:
    import scipy.io

    data = scipy.io.loadmat(str(path))
    return {name: val for name, val in data.items() if not name.startswith("__")}


def _h5_vars(path: Path) -> list[tuple[str, object, str]]:
    """Top-level variables of a v7.3 file as ``(name, value, matlab_class)``.

    Numeric values are returned in MATLAB orientation (HDF5 stores them transposed); cell
    arrays are returned as lists of arrays in MATLAB linear (column-major) order.
    """
    h5py = _import_h5py(path)
    out: list[tuple[str, object, str]] = []
    with h5py.File(path, "r") as f:
        for name in f:
            if name.startswith("#") or name.startswith("__"):
                continue
            node = f[name]
            if not isinstance(node, h5py.Dataset):
                continue  # structs, objects
            cls = node.attrs.get("MATLAB_class", b"")
            cls = cls.decode() if isinstance(cls, bytes) else str(cls)
            if node.attrs.get("MATLAB_empty", 0):
                continue
            if cls == "cell":
                refs = node[()]
                # HDF5 holds the cell array transposed: C order here = MATLAB column-major order.
                items = [np.asarray(f[r][()]).T for r in refs.ravel()]
                out.append((name, items, cls))
            elif cls not in ("char", "struct", "function_handle") and node.dtype.kind in "biuf":
                out.append((name, np.asarray(node[()]).T, cls))
    return out


def _mat_vars(path: Path) -> list[tuple[str, object]]:
    """Variables of a ``.mat`` file in file order; cells become lists of arrays."""
    if _is_hdf5_mat(path):
        return [(name, val) for name, val, _ in _h5_vars(path)]
    items: list[tuple[str, object]] = []
    for name, val in _read_mat_v5(path).items():
        if isinstance(val, np.ndarray) and val.dtype == object:
            items.append((name, [np.asarray(v) for v in val.ravel(order="F")]))
        else:
            items.append((name, val))
    return items


def _pick_2d(variables: list[tuple[str, object]], path: Path) -> np.ndarray:
    arrays = {n: v for n, v in variables if _numeric(v)}
    for name in _MAT_NAMES:
        if name in arrays:
            if arrays[name].ndim != 2:
                raise KernelError(
                    f"variable '{name}' in {path} has shape {arrays[name].shape}; "
                    "a kernel must be 2-D (use load_kernel_stack for stacks)"
                )
            return arrays[name]
    for val in arrays.values():
        if val.ndim == 2 and val.size > 1:
            return val
    for _, val in variables:
        if isinstance(val, list) and len(val) == 1 and _numeric(val[0]) and val[0].ndim == 2:
            return val[0]
    raise KernelError(
        f"no 2-D numeric variable in {path} (variables: {', '.join(n for n, _ in variables)}); "
        "use load_kernel_stack for cell arrays or stacks"
    )


def _check_file(path: PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise KernelError(f"kernel file not found: {p}")
    if not p.is_file():
        raise KernelError(f"kernel path is not a file: {p}")
    return p


def _to_kernel(arr: object, path: Path, what: str = "kernel") -> torch.Tensor:
    if not _numeric(arr):
        raise KernelError(f"{what} in {path} is not a real numeric array")
    assert isinstance(arr, np.ndarray)
    if arr.ndim != 2:
        raise KernelError(
            f"{what} in {path} must be 2-D, got shape {arr.shape} "
            "(use load_kernel_stack for stacks)"
        )
    t = torch.from_numpy(np.array(arr, dtype=np.float64))
    return normalize(validate_kernel(t, f"{what} in {path}"))


def _image_extensions() -> set[str]:
    from PIL import Image

    return {ext.lower() for ext in Image.registered_extensions()}


def load_kernel(path: PathLike) -> torch.Tensor:
    """Load one kernel as a float64 ``(Kh, Kw)`` tensor normalised to sum 1.

    Formats by extension: ``.npy`` (a 2-D array); ``.mat`` (MATLAB v4/v5 via scipy, v7.3/HDF5
    via h5py, returned in MATLAB orientation): the variable ``kernel``, ``k`` or ``f`` if
    present, else the first 2-D numeric variable with more than one element, else a one-element
    cell; any image format Pillow reads (``.png``, ``.jpg``, ...; grayscale, 16-bit supported,
    colour converted to BT.601 luminance, alpha ignored). Values are not clipped, only
    normalised. Raises :class:`KernelError` naming the path for any problem.
    """
    p = _check_file(path)
    ext = p.suffix.lower()
    try:
        if ext == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif ext == ".mat":
            arr = _pick_2d(_mat_vars(p), p)
        elif ext in _image_extensions():
            arr = _read_image(p)
        else:
            raise KernelError(
                f"unknown kernel file extension '{p.suffix}' for {p}; use .npy, .mat or an image"
            )
    except KernelError:
        raise
    except Exception as exc:  # any reader failure means a bad kernel file
        raise KernelError(f"cannot read kernel file {p}: {exc}".splitlines()[0]) from exc
    return _to_kernel(arr, p)


def load_kernel_stack(path: PathLike) -> list[torch.Tensor]:
    """Load several kernels from one file, each float64 ``(Kh_i, Kw_i)`` normalised to sum 1.

    ``.mat``: a cell array (elements in MATLAB column-major order) or a 3-D numeric array
    ``(Kh, Kw, N)`` in MATLAB orientation, split along its last axis; the variable ``kernels``,
    ``kernel``, ``k`` or ``f`` is preferred, else the first cell/3-D variable, else a 2-D one.
    ``.npy``: ``(N, Kh, Kw)`` or a single 2-D array. Other formats give a one-element list via
    :func:`load_kernel`.
    """
    p = _check_file(path)
    ext = p.suffix.lower()
    if ext not in (".mat", ".npy"):
        return [load_kernel(p)]
    try:
        if ext == ".npy":
            arr = np.load(p, allow_pickle=False)
            if _numeric(arr) and arr.ndim == 3:
                items: list[object] = list(arr)
            else:
                items = [arr]
        else:
            variables = _mat_vars(p)

            def stack_like(v: object) -> bool:
                return isinstance(v, list) or (_numeric(v) and v.ndim == 3)  # type: ignore[union-attr]

            named = [v for n, v in variables if n in _STACK_NAMES]
            chosen = next((v for v in named if stack_like(v)), None)
            if chosen is None:
                chosen = next((v for _, v in variables if stack_like(v)), None)
            if chosen is None:
                items = [_pick_2d(variables, p)]
            elif isinstance(chosen, list):
                items = list(chosen)
            else:
                assert isinstance(chosen, np.ndarray)
                items = [chosen[:, :, i] for i in range(chosen.shape[2])]
    except KernelError:
        raise
    except Exception as exc:  # any reader failure means a bad kernel file
        raise KernelError(f"cannot read kernel file {p}: {exc}".splitlines()[0]) from exc
    if not items:
        raise KernelError(f"no kernels found in {p}")
    return [_to_kernel(a, p, f"kernel {i + 1}") for i, a in enumerate(items)]


def save_kernel(k: torch.Tensor, path: PathLike, magnify: int = 1) -> None:
    """Write a ``(Kh, Kw)`` kernel atomically (temp file in the same folder, then rename).

    ``.npy``: the values as float32, unscaled. ``.png``: 8-bit grayscale of
    ``clip(k / k.max(), 0, 1) * 255`` (rounded), each pixel repeated ``magnify`` times along
    both axes (nearest neighbour); the absolute scale is lost (``load_kernel`` renormalises).
    Bad kernels raise :class:`KernelError`; a missing folder, a folder as target, an unknown
    extension or a write failure raise :class:`OutputError`.
    """
    k = validate_kernel(k)
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in (".npy", ".png"):
        raise OutputError(f"unknown kernel file extension '{p.suffix}' for {p}; use .npy or .png")
    try:
        mag = _pos_int(magnify, "magnify")
    except KernelError as exc:
        raise OutputError(str(exc)) from None
    arr = k.detach().to("cpu", torch.float64).numpy()
    if ext == ".npy":
        data = arr.astype(np.float32)
        atomic_write(p, lambda fh: np.save(fh, data, allow_pickle=False))
        return
    from PIL import Image

    img = np.round(np.clip(arr / arr.max(), 0.0, 1.0) * 255.0).astype(np.uint8)
    if mag > 1:
        img = np.repeat(np.repeat(img, mag, axis=0), mag, axis=1)
    atomic_write(p, lambda fh: Image.fromarray(img).save(fh, format="PNG"))
