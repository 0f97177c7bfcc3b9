"""``kf bench``: score SR methods on synthetic LR images (see :mod:`kfops.bench`).

torch and kfops are imported inside the command only, so ``kf --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click

from kfcli.common import check_scale, guarded, resolve_device


@click.command()
@click.argument("hr_dir", type=click.Path(path_type=Path))
@click.option(
    "--kernels",
    "kernel_spec",
    default="levin,stress,gauss",
    show_default=True,
    help="Comma-separated kernel sets (levin, stress, gauss) and/or folders of .npy kernels.",
)
@click.option("-s", "--scale", type=int, default=4, show_default=True, help="Scale factor (1-8).")
@click.option(
    "--crop",
    type=click.IntRange(min=0),
    default=512,
    show_default=True,
    help="HR centre-crop size, made a multiple of the scale (0 = whole image).",
)
@click.option(
    "-m",
    "--method",
    "methods",
    multiple=True,
    help="Method to run (repeatable; default: bicubic and gt-backprojection).",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output folder (created; an existing run there is resumed).",
)
@click.option("--limit-images", type=click.IntRange(min=1), default=None, help="Use the first N.")
@click.option(
    "--kernel-size", type=click.IntRange(min=1), default=24, show_default=True, help="Set kernels."
)
@click.option(
    "--align/--no-align",
    "align_kernels",
    default=True,
    show_default=True,
    help="Move each kernel's centre of mass to where the degradation is bicubic-aligned "
    "(as Phase 2 places its estimate); a kernel off it shifts the LR image by a fraction "
    "of a pixel, which no blind method can recover.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Base of the job seeds.")
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
@click.option("--save-images", is_flag=True, help="Also write every LR and SR image.")
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="MODULE",
    help="Import MODULE first (it registers more methods with kfops.bench.register_method).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, no summary.")
@guarded
def bench(
    hr_dir: Path,
    kernel_spec: str,
    scale: int,
    crop: int,
    methods: tuple[str, ...],
    out_dir: Path,
    limit_images: int | None,
    kernel_size: int,
    align_kernels: bool,
    seed: int,
    device: str,
    save_images: bool,
    plugins: tuple[str, ...],
    quiet: bool,
) -> None:
    """Degrade the images of HR_DIR with each kernel, super-resolve them with each method,
    and write results.csv, summary.md, kernels.png and crops.png to --out."""
    import importlib

    from kfops import bench as kb
    from kfops.errors import KfopsError

    check_scale(scale)
    for name in plugins:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise KfopsError(f"cannot import plugin {name!r}: {exc}") from None
    names = list(methods) or list(kb.DEFAULT_METHODS)
    for name in names:
        kb.get_method(name)
    rows = kb.run_benchmark(
        hr_dir,
        kernel_spec,
        out_dir,
        names,
        scale,
        crop,
        kernel_size=kernel_size,
        align_kernels=align_kernels,
        limit_images=limit_images,
        seed=seed,
        device=resolve_device(device),
        save_images=save_images,
        quiet=quiet,
    )
    if not quiet:
        click.echo(f"{len(rows)} results; see {out_dir / 'summary.md'}")
        for name in dict.fromkeys(r["method"] for r in rows):
            mr = [r for r in rows if r["method"] == name]
            p = sum(r["psnr_y"] for r in mr) / len(mr)
            s = sum(r["ssim_y"] for r in mr) / len(mr)
            click.echo(f"  {name}: PSNR_Y {p:.2f} dB, SSIM_Y {s:.4f} ({len(mr)} images x kernels)")
