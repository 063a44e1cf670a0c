"""Pictures: image grids and loss curves, written as PNG files.

Each figure is a matplotlib.figure.Figure drawn on its own Agg canvas, never a pyplot
figure: nothing here picks or changes matplotlib's backend (a notebook keeps its own),
and no display is needed. matplotlib is imported only when a picture is made.
"""
from pathlib import Path

import numpy as np


def tile(images, ncol=8, pad=1):
    """(N, 1, H, W) in [0, 1] -> one (rows*(H+pad)+pad, ncol*(W+pad)+pad) mosaic, white gaps."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"tile: expected grey images (N, 1, H, W), got {images.shape}")
    n, _, h, w = images.shape
    nrow = -(-n // ncol)
    canvas = np.ones((nrow * (h + pad) + pad, ncol * (w + pad) + pad), np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, ncol)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = img[0]
    return canvas


def save_image_grid(images, path, ncol=8):
    """Write images (N, 1, H, W) in [0, 1] as one PNG grid; returns the path."""
    from matplotlib.image import imsave  # writes the pixels through PIL, no figure or backend involved

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imsave(path, np.clip(tile(images, ncol), 0, 1), cmap="gray", vmin=0, vmax=1)
    return path


def save_curves(history, path, keys=None, title=""):
    """Plot metrics per epoch from a list of dicts (train_epochs' history); returns the path."""
    keys = keys or [k for k in history[0] if k != "seconds"]
    fig = _figure(figsize=(5, 3.2))
    ax = fig.subplots()
    for key in keys:
        ax.plot(range(1, len(history) + 1), [h[key] for h in history], marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


PANELS = (  # (title, does this metric belong here?) for save_training_panels
    ("D(x), D(G(z))", lambda key: key.startswith("d_") and not key.endswith(("loss", "norm"))),
    ("losses", lambda key: "loss" in key or key in ("gp", "kl")),
    ("gradient norms", lambda key: key.endswith("norm")),
)


def save_training_panels(records, path, title="", window=50):
    """Per-step metrics (a list of dicts, e.g. a run's metrics.jsonl) in panels, moving means over
    `window` steps: D's outputs, the losses, the gradient norms, and the rest. An oscillating
    D, or a D that wins outright (D(x) → 1, D(G(z)) → 0), shows here. Returns the path."""
    keys = [k for k in records[0] if k not in ("step", "epoch") and isinstance(records[0][k], (int, float))]
    groups = [(name, [k for k in keys if belongs(k)]) for name, belongs in PANELS]
    grouped = {k for _, ks in groups for k in ks}
    groups = [g for g in groups + [("other", [k for k in keys if k not in grouped])] if g[1]]
    window = max(1, min(window, len(records) // 10))
    fig = _figure(figsize=(4 * len(groups), 3))
    axes = fig.subplots(1, len(groups), squeeze=False)
    for ax, (name, group) in zip(axes[0], groups):
        for key in group:
            values = np.convolve([r[key] for r in records], np.ones(window) / window, mode="valid")
            ax.plot(np.arange(len(values)) + window, values, label=key, lw=1)
        ax.set_xlabel("step")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
        if name == "gradient norms":
            ax.set_yscale("log")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _figure(figsize):
    """A Figure on its own Agg canvas: outside pyplot, so the user's backend and figures are untouched."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    """Write a figure of _figure as a PNG (making its folder); returns the path. Nothing to close:
    pyplot never held it, so it is freed with its last reference."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
