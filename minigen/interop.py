"""Graduating to PyTorch: a minigen layer stack and its parameters as the equivalent torch module, and back.

    module = to_torch(net, params, input_shape=(100,))        # an nn.Module with the same outputs
    torch.save(module.state_dict(), "generator.pt")
    params = from_torch(net, module, input_shape=(100,))      # minigen params from torch weights

torch is imported only when these functions run, so minigen itself never needs it.
The layouts differ in one place: minigen's Dense keeps W as (in, out) so that
y = x @ W reads like the formula; torch's Linear keeps (out, in). Convolution
weights have the same layout in both (see ops.py). BatchNorm's running statistics
live in minigen's `state` dict and in torch's buffers.
"""
import numpy as np

SUPPORTED = ("Sequential", "Dense", "Conv2d", "ConvTranspose2d", "BatchNorm", "Dropout", "ReLU", "LeakyReLU",
             "Sigmoid", "Tanh", "Softplus", "Flatten", "Reshape")


def to_torch(layer, params, input_shape, state=None):
    """The torch nn.Module computing what `layer.apply(params, x)` computes, holding copies of params.

    input_shape: one example's shape, e.g. (100,) or (1, 28, 28) — needed to pick
    BatchNorm1d or BatchNorm2d. state: BatchNorm running statistics, if trained.
    Returned in eval mode, like minigen's default apply(train=False).
    """
    import torch
    module, _ = _build(layer, params, tuple(input_shape), state or {}, torch)
    return module.eval()


def from_torch(layer, module, input_shape):
    """minigen params (float32 numpy arrays) from a module made by to_torch or shaped alike.

    (BatchNorm running statistics stay in torch's buffers: read them with
    module.state_dict() if you need them.)
    """
    import torch
    params, _ = _build(layer, None, tuple(input_shape), {}, torch, module=module)
    return params


def _build(layer, params, shape, state, torch, module=None):
    """(torch module, output shape) — or, given `module`, (minigen params, output shape)."""
    nn = torch.nn
    kind, settings = layer.spec if layer.spec else (None, {})
    if kind not in SUPPORTED:
        raise ValueError(f"interop: cannot translate {layer.name} (supported: {', '.join(SUPPORTED)})")
    out_shape, fresh = layer.init(np.random.default_rng(0), shape)
    if kind == "Sequential":
        parts, shapes_in = [], shape
        for i, sub in enumerate(settings["layers"]):
            sub_params = None if params is None else params[i]
            sub_module = None if module is None else module[i]
            built, shapes_in = _build(sub, sub_params, shapes_in, state.get(str(i), {}), torch, sub_module)
            parts.append(built)
        return (parts if module is not None else nn.Sequential(*parts)), out_shape
    if module is not None:
        return _params_from(kind, module, fresh), out_shape
    return _module_for(kind, settings, params, shape, out_shape, state, torch), out_shape


def _module_for(kind, settings, params, shape, out_shape, state, torch):
    nn = torch.nn
    tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    if kind == "Dense":
        m = nn.Linear(*params["W"].shape)
        _load(m, weight=params["W"].T, bias=params["b"], torch=torch)
    elif kind in ("Conv2d", "ConvTranspose2d"):
        w = params["w"]
        if kind == "Conv2d":
            m = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2:], settings["stride"], settings["padding"])
        else:
            m = nn.ConvTranspose2d(w.shape[0], w.shape[1], w.shape[2:], settings["stride"], settings["padding"],
                                   settings["output_padding"])
        _load(m, weight=w, bias=params["b"], torch=torch)
    elif kind == "BatchNorm":
        norm = nn.BatchNorm1d if len(shape) == 1 else nn.BatchNorm2d
        m = norm(shape[0], eps=settings["eps"], momentum=settings["momentum"])
        _load(m, weight=params["gamma"], bias=params["beta"], torch=torch)
        with torch.no_grad():
            if "mean" in state:
                m.running_mean.copy_(tensor(state["mean"]))
                m.running_var.copy_(tensor(state["var"]))
    elif kind == "Reshape":
        m = nn.Sequential(nn.Flatten(), nn.Unflatten(1, settings["shape"]))
    elif kind == "LeakyReLU":
        m = nn.LeakyReLU(settings["negative_slope"])
    elif kind == "Dropout":
        m = nn.Dropout(settings["rate"])
    else:  # ReLU, Sigmoid, Tanh, Softplus, Flatten: the same name, no settings
        m = getattr(nn, kind)()
    return m


def _load(module, weight, bias, torch):
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32)))
        module.bias.copy_(torch.from_numpy(np.ascontiguousarray(bias, dtype=np.float32)))


def _params_from(kind, module, fresh):
    """minigen params of one layer from its torch twin; `fresh` (from init) gives the expected shapes."""
    if not fresh:
        return {}
    weight = module.weight.detach().cpu().numpy().astype(np.float32)
    bias = module.bias.detach().cpu().numpy().astype(np.float32)
    names = {"Dense": ("W", "b"), "Conv2d": ("w", "b"), "ConvTranspose2d": ("w", "b"),
             "BatchNorm": ("gamma", "beta")}[kind]
    out = dict(zip(names, (weight.T.copy() if kind == "Dense" else weight, bias)))
    for key, want in fresh.items():
        if out[key].shape != want.shape:
            raise ValueError(f"interop: torch {type(module).__name__} has {key} of shape {out[key].shape}, "
                             f"the minigen layer expects {want.shape}")
    return out
