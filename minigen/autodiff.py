"""value_and_grad for a tree of parameters, without autograd's cost of differentiating containers.

autograd.value_and_grad(loss)(params, ...) differentiates `params` as one value:
a dict of lists of dicts. Every `params["encoder"][1]["W"]` inside the loss is
then a traced indexing operation, and on the way back autograd starts each
container's gradient as zeros the size of *all* its arrays and adds the pieces
in (builtins.container_untake / sparse_add). For the 784-400-20 VAE that is
several full copies of the model's parameters per step, about a sixth of the
step's time (measured with cProfile; see benchmarks/README.md).

Here each parameter array is traced on its own instead: the loss receives the
same nested dicts and lists, but holding one traced box per array, so indexing
them is plain Python, and each array's gradient arrives exactly as its last VJP
made it. Everything else is autograd's own machinery; gradients of gradients
(used by WGAN-GP's penalty, which differentiates with respect to inputs inside
the loss) still work, since an inner autograd.grad opens its own trace.
"""
import numpy as np
from autograd.core import VJPNode, add_outgrads, vspace
from autograd.tracer import isbox, new_box, trace_stack
from autograd.util import toposort

from minigen.tree import leaves, rebuild


def value_and_grad(loss):
    """loss(params, *args) -> scalar  ==>  f(params, *args) -> (value, gradient tree shaped like params).

    Only the first argument is differentiated; like autograd's, but see the module docstring.
    """
    def value_and_gradient(params, *args, **kwargs):
        value, vjp = value_and_vjp(loss)(params, *args, **kwargs)
        return value, vjp(vspace(value).ones())

    return value_and_gradient


def value_and_vjp(fn):
    """fn(params, *args) -> array  ==>  f(params, *args) -> (value, vjp): the forward pass now, the
    backward pass later. vjp(c), for c shaped like the value, is the gradient tree of sum(c · fn(params))
    with respect to params (shaped like params; zeros where fn does not depend on an array).

    A GAN's D step makes fakes G(z) that its G step can score again (make_gan_step's reuse_fakes): the
    forward pass through G is then traced once, and G's gradient is vjp(∂ loss / ∂ fakes).
    """
    def forward(params, *args, **kwargs):
        arrays = leaves(params)
        with trace_stack.new_trace() as trace:
            roots = [VJPNode.new_root() for _ in arrays]
            boxes = [new_box(a, trace, root) for a, root in zip(arrays, roots)]
            end = fn(rebuild(params, iter(boxes)), *args, **kwargs)
        depends = isbox(end) and end._trace == trace  # False: fn does not depend on params at all

        def vjp(cotangent):
            grads = _backward(end._node, roots, cotangent) if depends else [None] * len(arrays)
            return rebuild(params, (np.zeros_like(a) if g is None else g for g, a in zip(grads, arrays)))

        return (end._value if depends else end), vjp

    return forward


def _backward(end_node, roots, one):
    """autograd's backward pass from d(loss)/d(loss) = 1, keeping the gradient that reaches each root."""
    outgrads = {end_node: (one, False)}
    reached = {}
    for node in toposort(end_node):
        grad, _ = outgrads.pop(node)
        if not node.parents:  # a parameter's root node
            reached[node] = grad
            continue
        for parent, ingrad in zip(node.parents, node.vjp(grad)):
            outgrads[parent] = add_outgrads(outgrads.get(parent), ingrad)
    return [reached.get(root) for root in roots]

