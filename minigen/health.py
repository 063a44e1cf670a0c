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
import math
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
    lines = log_path.read_text().splitlines()
    if lines and not lines[-1].rstrip().endswith("}"):
        lines = lines[:-1]  # a line the running training loop is still writing
    records = [json.loads(line) for line in lines if line.strip()]
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


def load_band(model, bands_dir=None):
    """The band shipped for `model` (a dict, see make_band), or None when none is shipped."""
    path = Path(bands_dir or BANDS_DIR) / f"{model}.json"
    return json.loads(path.read_text()) if path.is_file() else None


# --- The diagnosis ---------------------------------------------------------------------------

# Rules of thumb (ours, not from a paper), used where the band does not say otherwise:
D_WINS = (0.95, 0.05)  # D(x) above and D(G(z)) below these, on average over the run's last quarter
G_LOSS_CLIMB = 1.25  # G's loss at the end over its lowest window mean
COLLAPSED_KL = 0.5  # nats per image: the code carries about nothing about x
TOP_CLASS_SHARE, MIN_CLASSES = 0.5, 5  # a fair generator draws each digit ~10 % of the time
SAME_IMAGE_STD = 0.02  # mean per-pixel sd across samples: the samples are one picture
MIN_OUTSIDE = 3  # windows in a row outside the band before it is reported


def problem(name, text):
    return {"problem": name, "text": text}


def _tail(values):
    """Mean of the finite values in the last quarter (at least one) of a window series."""
    last = np.asarray(values[-max(1, len(values) // 4):], np.float64)
    last = last[np.isfinite(last)]
    return float(last.mean()) if len(last) else math.nan


def non_finite(steps):
    """The first NaN or Inf in the log, as a problem, or None."""
    for record in steps:
        for key, value in record.items():
            if key not in NOT_PLOTTED and isinstance(value, float) and not math.isfinite(value):
                return problem("diverged", (
                    f"diverged: {key} is {value} at step {record.get('step')} (epoch {record.get('epoch')}). "
                    "Usual causes: a learning rate too large for the model, exploding gradients, the log of a "
                    "probability that reached 0 or 1. Try a smaller --lr and continue from the last good "
                    "checkpoint (minigen train --resume RUN --lr ...)."))
    return None


def d_wins(means, inside_band):
    """D(x) → 1 and D(G(z)) → 0 while G's loss climbs (a probability-valued D only, not a WGAN critic)."""
    if not {"d_real", "d_fake", "g_loss"} <= set(means) or inside_band("d_real"):
        return None
    real, fake, g = (means[k] for k in ("d_real", "d_fake", "g_loss"))
    finite = np.concatenate([real[np.isfinite(real)], fake[np.isfinite(fake)]])
    if len(finite) == 0 or finite.min() < 0 or finite.max() > 1:
        return None  # a critic's scores, not probabilities
    g_end, g_low = _tail(g), float(np.nanmin(g))
    if _tail(real) > D_WINS[0] and _tail(fake) < D_WINS[1] and g_end > G_LOSS_CLIMB * g_low:
        return problem("D wins", (
            f"D wins: at the end D(x) = {_tail(real):.3f} and D(G(z)) = {_tail(fake):.3f}, while G's loss climbed "
            f"from {g_low:.3g} to {g_end:.3g}. D tells real from fake with confidence, so its gradient gives G "
            "little to learn from (Goodfellow et al. 2014; Arjovsky & Bottou 2017). Usual causes: D too strong "
            "or too fast (a larger net, a higher lr, more D steps), G's minimax loss instead of the "
            "non-saturating one. Try a gradient penalty on D (--set gp=10; Fedus et al. 2018), a lower lr "
            "for D, one-sided label smoothing (--set smooth=0.1; Salimans et al. 2016), or a WGAN-GP."))
    return None


def posterior_collapse(means):
    """KL(q(z|x) || p(z)) → 0: a VAE whose decoder ignores its code."""
    if "kl" not in means or not np.isfinite(_tail(means["kl"])) or _tail(means["kl"]) >= COLLAPSED_KL:
        return None
    return problem("posterior collapse", (
        f"posterior collapse: KL(q(z|x) || p(z)) is {_tail(means['kl']):.3g} nats per image at the end (it peaked "
        f"at {np.nanmax(means['kl']):.3g}): q(z|x) equals the prior, so z says nothing about x and every sample "
        "looks alike (Bowman et al. 2016). Usual causes: a beta > 1 too large, a decoder strong enough to model "
        "x without z, the KL at full weight from the first step. Try a smaller beta, a KL warm-up (Bowman et al. "
        "2016; Sønderby et al. 2016) or free bits (Kingma et al. 2016)."))


WHY_COLLAPSED = {  # (adversarial?) -> what usually makes a generator's samples collapse, and what to try
    True: "G found a few images that fool D and stays there. Usual causes: a G that outpaces D, a too-high "
          "lr, a D that won early. Try PacGAN (Lin et al. 2018), a WGAN-GP, weight averaging, a lower lr.",
    False: "A VAE's decoder draws its average image when z carries nothing: see posterior collapse, if "
           "named above; else the run may be too short, or its beta too large.",
}


def collapsed_samples(class_probs, samples, adversarial=True):
    """Few classes in the shipped classifier's eyes, or nearly one image: a collapsed generator.
    adversarial: a GAN's (the causes named are a GAN's), else a VAE's."""
    found = []
    if class_probs is not None and len(class_probs):
        shares = np.bincount(np.argmax(class_probs, axis=1), minlength=10) / len(class_probs)
        top, used = int(np.argmax(shares)), int((shares >= 0.02).sum())
        if shares[top] > TOP_CLASS_SHARE or used < MIN_CLASSES:
            found.append(problem("mode collapse", (
                f"mode collapse: the shipped classifier reads {100 * shares[top]:.0f} % of {len(class_probs)} "
                f"samples as a {top}, and only {used} digits appear in 2 % or more (a fair generator draws each "
                f"about 10 %). {WHY_COLLAPSED[adversarial]}")))
    if samples is not None and len(samples) > 1:
        spread = float(np.asarray(samples, np.float64).std(axis=0).mean())
        if spread < SAME_IMAGE_STD:
            found.append(problem("same image", (
                f"collapsed generator: the samples hardly differ (mean per-pixel sd {spread:.4f}): it draws about "
                f"one image whatever z is, or its outputs are saturated (all 0 or 1). {WHY_COLLAPSED[adversarial]}")))
    return found


def _outside(means, ends, band, key):
    """(first, last) window of the longest stretch where `key` leaves its band (widened by half its
    width and 5 % of its median: 3 seeds mark a small part of the spread), and its side, or None."""
    q, n = band["quantities"][key], min(len(ends), len(band["steps"]))
    lo, mid, hi = (np.asarray(q[s][:n]) for s in ("min", "median", "max"))
    slack = 0.5 * (hi - lo) + 0.05 * np.abs(mid)
    run = means[key][:n]
    side = np.where(run > hi + slack, 1, np.where(run < lo - slack, -1, 0))  # (n,)
    best, start = None, 0
    for i in range(n + 1):
        if i == n or side[i] == 0 or side[i] != side[start]:
            if i > start and side[start] != 0 and (best is None or i - start > best[1] - best[0] + 1):
                best = (start, i - 1)
            start = i
    if best is None or best[1] - best[0] + 1 < MIN_OUTSIDE:
        return None
    return best, "above" if side[best[0]] > 0 else "below", (lo, hi)


def outside_band(means, ends, band):
    """One problem naming each quantity outside its band for MIN_OUTSIDE windows in a row, or None."""
    stretches = []
    for key in [k for k in band["quantities"] if k in means]:
        hit = _outside(means, ends, band, key)
        if hit is not None:
            (a, b), side, (lo, hi) = hit
            stretches.append(f"{key} {side} it from step {ends[a] - band['window_steps'] + 1:,} to {ends[b]:,} "
                             f"({means[key][b]:.4g} against {lo[b]:.4g}..{hi[b]:.4g} at step {ends[b]:,})")
    if not stretches:
        return None
    return problem("outside the band", (
        "outside the band: " + "; ".join(stretches) + ". Usual causes: a recipe unlike the band's (batch size, "
        "lr, --set options: see the notes), a changed model, or an unlucky seed; a curve that leaves first "
        "often points at the cause."))


def recipe_notes(config, band):
    """Notes (not problems) on how far the band applies to this run."""
    if band is None:
        return [f"no band shipped for {config.get('model')}: its curves are checked by the rules alone "
                "(benchmarks/bands.py measures one)"]
    differs = [f"{k} {config.get(k)!r} (band: {v!r})" for k, v in band["recipe"].items()
               if k != "minutes" and config.get(k) != v]
    notes = [f"the band: {band['covers']}, seeds {', '.join(str(r['seed']) for r in band['runs'])}; "
             f"{band['cpu_seconds_per_epoch']['min']:.0f}-{band['cpu_seconds_per_epoch']['max']:.0f} CPU s per epoch"]
    if differs:
        notes.append("this run's recipe is not the band's, so the band is a rough guide only: " + ", ".join(differs))
    return notes


def compared_with_band(steps, band):
    """Whether a run's logged steps are compared with `band`: only if there is one and the run
    covers at least one of its windows (per-step values against window means would compare unlike things)."""
    return band is not None and len(steps) >= band["window_steps"]


def diagnose(config, steps, band=None, class_probs=None, samples=None):
    """(problems, notes) of a run: its config, its per-step records, its model's band (or None),
    optionally its samples (N, 1, 28, 28) and their class probabilities (N, 10) in the shipped classifier.
    Each problem is {"problem": name, "text": what is off and what usually causes it}."""
    window = band["window_steps"] if band else max(1, len(steps) // 40)
    means, ends = windowed(steps, window)
    if len(ends) == 0:  # fewer steps than one window: the rules still read them, one by one
        means, ends = windowed(steps, 1)
    band_compared = band if compared_with_band(steps, band) else None

    def inside_band(key):
        return (band_compared is not None and key in band["quantities"]
                and _outside(means, ends, band, key) is None)

    found = [non_finite(steps), d_wins(means, inside_band), posterior_collapse(means)]
    found += collapsed_samples(class_probs, samples, adversarial="d_real" in means)
    found.append(outside_band(means, ends, band) if band_compared else None)
    notes = recipe_notes(config, band)
    if band and not band_compared:
        notes.append(f"this run's {len(steps)} steps are fewer than one window of the band ({window} steps), "
                     "so its curves are not compared with it")
    if band and len(ends) and ends[-1] > band["steps"][-1]:
        notes.append(f"this run's steps after {band['steps'][-1]:,} are beyond the band and not compared with it")
    return [f for f in found if f is not None], notes


def save_check_plot(steps, band, path, title=""):
    """One panel per logged quantity: the run's window means over its band (min..max shaded, the
    median dashed), against the training step. steps: the run's per-step records. Returns the path."""
    from minigen.viz import _figure, _save
    window = band["window_steps"] if band else max(1, len(steps) // 40)
    means, ends = windowed(steps, window)
    keys = list(means)
    cols = min(4, len(keys))
    fig = _figure(figsize=(3.2 * cols, 2.6 * -(-len(keys) // cols)))
    axes = fig.subplots(-(-len(keys) // cols), cols, squeeze=False).ravel()
    for ax, key in zip(axes, keys):
        if band and key in band["quantities"]:
            q = band["quantities"][key]
            ax.fill_between(band["steps"], q["min"], q["max"], color="tab:green", alpha=0.45, lw=0,
                            label="band (seeds)")
            ax.plot(band["steps"], q["median"], "--", color="tab:green", lw=1)
        ax.plot(ends, means[key], color="black", lw=1.2, label="this run")
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(keys):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
