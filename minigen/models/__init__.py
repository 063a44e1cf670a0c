"""One module per model family: each builds its networks, writes its loss as the
formula, and takes a train step with value_and_grad and an optimiser.

MODELS maps the names `minigen train` accepts to the module that builds them;
each such module has VARIANTS ({name: description}) and
build(name, options, rng, lr) -> Trainable. Modules are imported only when used.
"""
import importlib

MODELS = {
    "vae": "minigen.models.vae",
    "conv-vae": "minigen.models.vae",
    "iwae": "minigen.models.vae",
    "cvae": "minigen.models.cvae",
    "gan": "minigen.models.gan",
    "gan-minimax": "minigen.models.gan",
    "wgan": "minigen.models.gan",
    "wgan-gp": "minigen.models.gan",
    "dcgan": "minigen.models.dcgan",
    "cgan": "minigen.models.cgan",
    "progressive": "minigen.models.progressive",
    "vaegan": "minigen.models.vaegan",
    "m2": "minigen.models.semisupervised",
}


def describe():
    """{name: one-line description} of every trainable model."""
    return {name: importlib.import_module(module).VARIANTS[name] for name, module in MODELS.items()}


def build(name, options, rng, lr=None):
    """The Trainable for model `name` with `options` ({field: text}) applied to its config."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from: {', '.join(MODELS)}")
    return importlib.import_module(MODELS[name]).build(name, options, rng, lr)
