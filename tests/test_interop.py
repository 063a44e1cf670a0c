"""Export to torch and back: the same outputs, the same numbers."""
import numpy as np
import pytest
import torch

from minigen import interop, nn
from minigen.optim import leaves

STACKS = {
    "lecture generator": (lambda: nn.Sequential(nn.Dense(128), nn.ReLU(), nn.Dense(784), nn.Sigmoid(),
                                                nn.Reshape((1, 28, 28))), (100,)),
    "dcgan-like generator": (lambda: nn.Sequential(
        nn.Dense(64 * 7 * 7), nn.BatchNorm(), nn.ReLU(), nn.Reshape((64, 7, 7)),
        nn.ConvTranspose2d(32, 4, stride=2, padding=1), nn.BatchNorm(), nn.ReLU(),
        nn.ConvTranspose2d(1, 4, stride=2, padding=1), nn.Tanh()), (16,)),
    "conv critic": (lambda: nn.Sequential(
        nn.Conv2d(8, 4, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Dropout(0.3),
        nn.Conv2d(16, 3, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Dense(1)), (1, 28, 28)),
    "M2 classifier (softplus)": (lambda: nn.Sequential(nn.Flatten(), nn.Dense(30), nn.Softplus(), nn.Dense(10)),
                                 (1, 28, 28)),
}


@pytest.mark.parametrize("name", STACKS)
def test_the_exported_module_gives_the_same_outputs_and_imports_back(name, rng):
    build, shape = STACKS[name]
    net = build()
    _, params = net.init(rng, shape)
    x = rng.standard_normal((5, *shape)).astype(np.float32)
    state = {}
    net.apply(params, x, train=True, state=state, rng=rng)  # running statistics worth exporting, if BN
    module = interop.to_torch(net, params, shape, state)
    with torch.no_grad():
        theirs = module(torch.from_numpy(x)).numpy()
    ours = net.apply(params, x, state=state)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)

    back = interop.from_torch(net, module, shape)
    for a, b in zip(leaves(params), leaves(back), strict=True):
        assert b.dtype == np.float32
        np.testing.assert_array_equal(a, b)


def test_unsupported_layers_and_mismatched_modules_are_named(rng):
    odd = nn.elementwise(np.abs, "Abs()")
    with pytest.raises(ValueError, match=r"cannot translate Abs\(\)"):
        interop.to_torch(nn.Sequential(nn.Dense(3), odd), nn.Sequential(nn.Dense(3), odd).init(rng, (2,))[1], (2,))
    net = nn.Sequential(nn.Dense(4))
    with pytest.raises(ValueError, match=r"torch Linear has W of shape \(2, 5\), the minigen layer expects \(2, 4\)"):
        interop.from_torch(net, torch.nn.Sequential(torch.nn.Linear(2, 5)), (2,))


def test_minigen_never_imports_torch_unless_asked():
    import subprocess
    import sys
    code = ("import sys, minigen.cli, minigen.train, minigen.interop, minigen.models.vae, minigen.metrics; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
