"""Jupyter hand-outs: one notebook per part of an assignment (`minigen assign OUT --format notebook`). Never shipped.

Each notebook sits in OUT/notebooks/ beside the student copy and imports the student's
functions from OUT/minigen/ (not from an installed minigen); per exercise it has the
function's docstring (shapes and formula), a cell importing it, and a cell running
the assignment's own autograder on it, so the grade is the same as from the shell.
Where a picture helps, a last cell trains a small model with the student's functions
on the packaged MNIST sample: VAE samples, an MLP's loss curve through the hand-written
backward passes. Solutions are files in minigen/, never cells: the leak check reads
the notebooks like every other shipped file.
"""
import ast
from pathlib import Path

PARTS = (  # (file name, title, exercises in lecture order)
    ("vae", "Variational autoencoders", ("gaussian_kl", "reparameterize", "elbo")),
    ("gan", "GAN losses", ("bce_with_logits", "discriminator_loss", "generator_loss_nonsaturating",
                           "gradient_penalty")),
    ("numerics", "Optimisation, convolution, numerical gradients", ("adam_step", "conv2d_im2col", "numerical_grad")),
    ("backprop", "Backward passes by hand", ("dense_backward", "batch_norm_backward", "conv2d_backward",
                                             "logistic_backward", "reparameterize_backward")),
)

SETUP = '''# This notebook grades and runs the minigen/ folder next to it (your copy), not an installed minigen.
import subprocess
import sys
from pathlib import Path

ASSIGNMENT = Path.cwd().resolve().parent  # the folder holding minigen/, autograder/ and ASSIGNMENT.md
sys.path.insert(0, str(ASSIGNMENT))
%load_ext autoreload
%autoreload 2
import minigen

assert Path(minigen.__file__).resolve().parent == ASSIGNMENT / "minigen", f"imported {minigen.__file__}"


def check(exercise):
    """Grade one exercise with the assignment's autograder: the same report as `python -m autograder`."""
    done = subprocess.run([sys.executable, "-m", "autograder", "--exercises", exercise], cwd=ASSIGNMENT,
                          capture_output=True, text=True)
    print(done.stdout or done.stderr)'''

PICTURES = {
    "vae": ("Samples from a VAE trained with your functions",
            "A small MLP VAE (784-200-8) trained for a few epochs on the 3,000 packaged MNIST images, with your "
            "KL, reparameterization and loss (and your BCE and backward passes, if they are part of the "
            "assignment). "
            "About a second an epoch on one core; blurry digits after 10 epochs are what to expect.",
            '''import matplotlib.pyplot as plt
import numpy as np

from minigen.data import batches, load_mnist_sample
from minigen.models.vae import VAE, VAEConfig, make_train_step
from minigen.optim import Adam
from minigen.viz import tile

EPOCHS = 10
rng = np.random.default_rng(0)
x, _ = load_mnist_sample("train")
model = VAE(VAEConfig(latent=8, hidden=200))
params = model.init(rng)
step = make_train_step(model, params, Adam(params, lr=1e-3), rng)
for epoch in range(EPOCHS):
    loss = np.mean([step(batch)["loss"] for batch in batches(rng, x, batch_size=128)])
    print(f"epoch {epoch + 1}: loss {loss:.1f}")
plt.imshow(tile(model.sample(params, rng, 32)), cmap="gray", vmin=0, vmax=1)
plt.axis("off")
plt.show()'''),
    "backprop": ("An MLP trained through your backward passes",
                 "Dense -> BatchNorm -> ReLU -> Dense on the packaged MNIST images: every gradient of this "
                 "training comes from the VJPs you wrote. The loss should fall steadily.",
                 '''import autograd.numpy as anp
import matplotlib.pyplot as plt
import numpy as np

from minigen import nn, ops
from minigen.autodiff import value_and_grad
from minigen.data import batches, load_mnist_sample
from minigen.optim import Adam

STEPS = 100
rng = np.random.default_rng(0)
x, y = load_mnist_sample("train")
net = nn.Sequential(nn.Flatten(), nn.Dense(64), nn.BatchNorm(), nn.ReLU(), nn.Dense(10))
_, params = net.init(rng, (1, 28, 28))
opt = Adam(params, lr=1e-3)


def loss(params, xb, yb):
    log_p = ops.log_softmax(net.apply(params, xb, train=True))
    return -anp.mean(anp.sum(log_p * ops.one_hot(yb), axis=1))


history = []
while len(history) < STEPS:
    for xb, yb in batches(rng, x, y, batch_size=64):
        value, grads = value_and_grad(loss)(params, xb, yb)
        opt.step(grads)
        history.append(float(value))
plt.plot(history[:STEPS])
plt.xlabel("step")
plt.ylabel("cross-entropy")
plt.show()'''),
}


def docstring(root, site):
    """The docstring of the function at `site` ("module.qualname") in root/minigen/<module>.py."""
    module, _, qualname = site.partition(".")
    node = ast.parse((root / "minigen" / f"{module}.py").read_text(encoding="utf-8"))
    for name in qualname.split("."):
        node = next(n for n in ast.iter_child_nodes(node) if getattr(n, "name", None) == name)
    return ast.get_docstring(node) or ""


def import_line(sites):
    """`from minigen.m import f, g` lines for the sites (a method: its class)."""
    names = {}
    for site in sites:
        module, _, qualname = site.partition(".")
        names.setdefault(module, []).append(qualname.split(".")[0])
    return "\n".join(f"from minigen.{module} import {', '.join(dict.fromkeys(found))}"
                     for module, found in names.items())


def exercise_cells(nbf, root, ex):
    """Markdown (title, points, where, docstrings), the import, and the check, for one manifest exercise."""
    from minigen.autograder.cases import exercise
    sites = exercise(ex["name"]).sites
    text = [f"## `{ex['name']}`: {ex['title']} ({ex['points']} points)", "",
            "Write " + ", ".join(f"`{w.split(': ')[1]}` in `{w.split(': ')[0]}`" for w in ex["where"]) + "."]
    for site in sites:
        text += ["", f"`{site.partition('.')[2]}`:", "", "```text", docstring(root, site), "```"]
    if ex.get("forbidden"):
        text += ["", "It may not call " + ", ".join(f"`{f}`" for f in ex["forbidden"]) + "."]
    return [nbf.v4.new_markdown_cell("\n".join(text)), nbf.v4.new_code_cell(import_line(sites)),
            nbf.v4.new_code_cell(f'check("{ex["name"]}")')]


def write_notebooks(out, manifest):
    """Write out/notebooks/<part>.ipynb for each part with an assigned exercise; return their paths."""
    try:
        import nbformat as nbf
    except ImportError as err:
        raise ValueError("--format notebook needs nbformat: pip install 'minigen[notebook]'") from err
    out, written = Path(out), []
    assigned = {ex["name"]: ex for ex in manifest["exercises"]}
    (out / "notebooks").mkdir()
    for part, title, names in PARTS:
        chosen = [assigned[n] for n in names if n in assigned]
        if not chosen:
            continue
        nb = nbf.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbf.v4.new_markdown_cell(
            f"# {title}\n\nWrite each function below in its file under `minigen/` (this notebook imports them "
            f"from there and picks up your edits), then run its check. See `ASSIGNMENT.md` for how you are "
            f"graded and what to hand in: the files in `minigen/`, not this notebook."),
            nbf.v4.new_code_cell(SETUP)]
        for ex in chosen:
            nb.cells += exercise_cells(nbf, out, ex)
        if part in PICTURES:
            heading, words, code = PICTURES[part]
            nb.cells += [nbf.v4.new_markdown_cell(f"## {heading}\n\n{words}"), nbf.v4.new_code_cell(code)]
        nbf.validate(nb)
        path = out / "notebooks" / f"{part}.ipynb"
        nbf.write(nb, str(path))
        written.append(path)
    return written
