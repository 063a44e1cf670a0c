"""A run's training as a GIF: the fixed-noise sample grid of every epoch, one frame each.

Every epoch, a run draws its samples from the same noise (minigen.rundir.Run.draw_samples
writes samples/epoch_NNN.png), so the frames show one set of samples evolving: a
digit forming out of noise, or, in a GAN, the whole grid changing as G chases D.
matplotlib's animation writer with Pillow writes the GIF; each frame carries its
epoch as a caption. A run stopped by its time budget mid-epoch also drew that epoch's
samples; its caption says the epoch is partial.
"""
import json
import math
import re
from pathlib import Path

GRID_NAME = re.compile(r"epoch_(\d+)\.png$")


def epoch_grids(run_dir):
    """[(epoch, path)] of the run's per-epoch sample grids, in epoch order; a clear error if none."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir} is not a folder; expected a run made by `minigen train` or a demo")
    folder = run_dir / "samples"
    found = sorted((int(m.group(1)), p) for p in folder.glob("epoch_*.png") if (m := GRID_NAME.search(p.name)))
    if not found:
        raise FileNotFoundError(f"no sample grids in {folder} (expected samples/epoch_001.png, ...): a run draws "
                                f"them at the end of each epoch, so train at least one epoch first")
    return found


def finished_epochs(run_dir):
    """The epochs with a summary line in metrics.jsonl (a grid of any other epoch is of a partial one)."""
    log = Path(run_dir) / "metrics.jsonl"
    if not log.is_file():
        return None
    lines = (json.loads(line) for line in log.read_text().splitlines() if line.strip())
    return {r["epoch"] for r in lines if r.get("summary")}


def caption(epoch, finished, model=None):
    """The frame's caption, e.g. "vae, epoch 3" or "gan, epoch 12 (part)"."""
    partial = finished is not None and epoch not in finished
    return f"{model + ', ' if model else ''}epoch {epoch}{' (part)' if partial else ''}"


def save_animation(run_dir, out, fps=2, hold=3):
    """Write the run's grids as a GIF at `fps` frames per second, the last shown `hold` frames longer.
    Returns (path, number of grids)."""
    from matplotlib.animation import PillowWriter
    from matplotlib.image import imread

    from minigen.viz import _figure

    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"--fps must be a finite number > 0, got {fps}")
    grids = epoch_grids(run_dir)
    config = Path(run_dir) / "config.json"
    model = json.loads(config.read_text()).get("model") if config.is_file() else None
    finished = finished_epochs(run_dir)
    first = imread(grids[0][1])
    height, width = first.shape[:2]
    dpi, caption_px = 100, 22
    fig = _figure(figsize=(width / dpi, (height + caption_px) / dpi))
    fig.set_dpi(dpi)
    ax = fig.add_axes((0, 0, 1, height / (height + caption_px)))  # the grid at its own pixel size
    ax.set_axis_off()
    shown = ax.imshow(first, interpolation="nearest")
    text = fig.text(0.5, 1 - 0.5 * caption_px / (height + caption_px), "", ha="center", va="center", fontsize=10)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = PillowWriter(fps=fps)
    with writer.saving(fig, out, dpi):
        for i, (epoch, path) in enumerate(grids):
            image = imread(path)
            if image.shape[:2] != (height, width):
                raise ValueError(f"{path} is {image.shape[1]}x{image.shape[0]} pixels, the first grid "
                                 f"{width}x{height}: the grids of one run should match")
            shown.set_data(image)
            text.set_text(caption(epoch, finished, model))
            for _ in range(1 + (hold if i == len(grids) - 1 else 0)):
                writer.grab_frame()
    return out, len(grids)
