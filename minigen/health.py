"""Is my run healthy? A run's logged curves against the band of its recipe, and the usual failures named.

A band (minigen/bands/MODEL.json, written by benchmarks/bands.py) holds, for one
default recipe trained with several seeds, each logged quantity's min, median and
max across the seeds, in windows of a fixed number of training steps: the x axis
is the step, not the epoch, because the GAN demos stop on a wall-clock budget in
the middle of an epoch, and a step is the same amount of learning on any machine.

`diagnose` reads a run directory (config.json, metrics.jsonl) and returns findings,
each a short text saying what is off and what usually causes it:

    diverged           a logged value is NaN or Inf
    D wins             D(x) → 1 and D(G(z)) → 0 while G's loss climbs: G's gradient vanishes
                       (Goodfellow et al. 2014, section 3; Arjovsky & Bottou 2017)
    posterior collapse KL(q(z|x) || p(z)) → 0: the decoder ignores z (Bowman et al. 2016)
    collapsed G        the shipped classifier puts most samples in few classes, or the
                       samples are nearly all the same image (minigen.metrics' classifier)
    outside the band   a quantity leaves its band for several windows in a row

A run with no finding is reported healthy. Thresholds are rules of thumb, stated
where they are defined; they flag runs for a look, they prove nothing.
"""
import json
from pathlib import Path

import numpy as np

BANDS_DIR = Path(__file__).resolve().parent / "bands"
NOT_PLOTTED = ("step", "epoch", "summary", "seconds")


# --- Reading a run and cutting its log into windows of steps ------------------------------

def read_run_log(run_dir):
    """(config dict, per-step records, per-epoch summary records) of a run directory."""
    run_dir = Path(run_dir)
    log_path, config_path = run_dir / "metrics.jsonl", run_dir / "config.json"
    for path in (config_path, log_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: RUN must be a folder made by `minigen train` or a demo")
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    steps = [r for r in records if not r.get("summary")]
    if not steps:
        raise ValueError(f"{log_path} holds no training steps yet")
    return json.loads(config_path.read_text()), steps, [r for r in records if r.get("summary")]


def quantities(records):
    """The logged numbers of step records, in their logged order (step, epoch left out)."""
    keys = []
    for record in records:
        keys += [k for k, v in record.items() if k not in NOT_PLOTTED and k not in keys
                 and isinstance(v, (int, float)) and not isinstance(v, bool)]
    return keys


def windowed(records, window):
    """{quantity: (W,) means over windows of `window` steps}, and the windows' last steps (W,).

    Window w holds steps w*window+1 .. (w+1)*window; only whole windows count. A NaN or Inf
    in a window makes its mean NaN or Inf, so a divergence is not averaged away."""
    if window < 1:
        raise ValueError(f"window must be a positive number of steps, got {window}")
    n = len(records) // window
    ends = np.arange(1, n + 1) * window
    means = {}
    for key in quantities(records):
        values = np.array([r.get(key, np.nan) for r in records[:n * window]], dtype=np.float64)
        means[key] = values.reshape(n, window).mean(axis=1)  # (W, window) -> (W,)
    return means, ends


# --- Bands -----------------------------------------------------------------------------------

def make_band(step_logs, window):
    """The band of several runs of one recipe: each quantity's min, median, max across runs per
    window of steps, over the windows every run reached. step_logs: one list of step records per run."""
    if len(step_logs) < 2:
        raise ValueError(f"a band needs at least 2 runs, got {len(step_logs)}")
    cut = [windowed(records, window) for records in step_logs]
    n = min(len(ends) for _, ends in cut)
    if n == 0:
        raise ValueError(f"a run is shorter than one window of {window} steps")
    keys = [k for k in cut[0][0] if all(k in means for means, _ in cut)]
    band = {}
    for key in keys:
        stacked = np.stack([means[key][:n] for means, _ in cut])  # (runs, W)
        band[key] = {stat: [round(float(v), 6) for v in fn(stacked, axis=0)]
                     for stat, fn in (("min", np.min), ("median", np.median), ("max", np.max))}
    return {"window_steps": window, "steps": [int(s) for s in cut[0][1][:n]], "quantities": band}


def load_band(model, bands_dir=BANDS_DIR):
    """The band shipped for `model` (a dict, see make_band), or None when none is shipped."""
    path = Path(bands_dir) / f"{model}.json"
    return json.loads(path.read_text()) if path.is_file() else None
