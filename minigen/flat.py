"""All parameters of one optimiser in one contiguous buffer, the tree's arrays views into it.

An optimiser's update is a dozen elementwise numpy calls (Adam's are listed in
minigen.optim). Made array by array, a network of k arrays pays k times the
calls, each with its fixed cost in Python and numpy, and reads each small array
with its own loop. Over one buffer that holds every parameter, the update is
the same dozen calls once, whatever k is.

    buffer, views = rehome(params)    the tree's arrays now live in `buffer`
    moments = zeros_like(buffer); split(moments, shapes)   per-array views for state_dict
    gather(grads, grad_views)         the gradient tree copied into one buffer (one pass)

rehome changes the tree's dicts and lists in place (each array is replaced by a
view holding the same values), so a model that holds the tree sees the views,
and an update of the buffer is an update of the model. Checkpoints, state_dict
and interop still see a tree of arrays.
"""
import weakref

import numpy as np

_BUFFERS = weakref.WeakValueDictionary()  # id -> each live buffer made by rehome (arrays are unhashable)


def split(buffer, shapes):
    """Views of the 1-d `buffer`, one per shape, in order and back to back."""
    views, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape, dtype=np.int64))
        views.append(buffer[start:start + size].reshape(shape))
        start += size
    return views


def rehome(tree):
    """Copy the arrays of `tree` (a nested dict/list; dict keys in sorted order) into one new
    1-d buffer and put views of it in their places. Returns (buffer, views in leaf order).

    A tree whose arrays already are, in order, the whole of one such buffer (a second
    optimiser over the same parameters) keeps it; a tree that holds only part of one
    is refused, since re-homing it would cut the first optimiser off from the model.
    """
    arrays = _leaves(tree)
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) != 1:
        raise TypeError(f"the parameters of one optimiser must share one dtype, got {sorted(map(str, dtypes))}")
    owner = _owner(arrays)
    if owner is not None:
        return owner, arrays
    if any(_is_buffer(a.base) for a in arrays):
        raise ValueError("some of these parameters already live in another optimiser's buffer, "
                         "but not all of it: give each optimiser the whole of its own part of the tree")
    if len(arrays) == 1 and arrays[0].flags.c_contiguous:  # one array is its own buffer (works for a bare array)
        return arrays[0].reshape(-1), arrays
    buffer = np.empty(sum(a.size for a in arrays), dtypes.pop())
    views = split(buffer, [a.shape for a in arrays])
    for view, a in zip(views, arrays):
        view[...] = a
    _replace(tree, iter(views))
    _BUFFERS[id(buffer)] = buffer
    return buffer, views


def gather(arrays, views):
    """Copy each array into its view of a flat buffer (one pass; transposed arrays are read as they lie)."""
    for view, a in zip(views, arrays):
        np.copyto(view, a)


def _owner(arrays):
    """The buffer that `arrays` exactly fill, back to back and in order, if there is one."""
    base = arrays[0].base
    if not _is_buffer(base) or sum(a.size for a in arrays) != base.size:
        return None
    address = base.__array_interface__["data"][0]
    for a in arrays:
        if a.base is not base or not a.flags.c_contiguous or a.__array_interface__["data"][0] != address:
            return None
        address += a.nbytes
    return base


def _is_buffer(array):
    return array is not None and _BUFFERS.get(id(array)) is array


def _leaves(tree):
    """The arrays of a nested dict/list in the order of minigen's other tree walks (dict keys sorted)."""
    if isinstance(tree, dict):
        return [leaf for key in sorted(tree) for leaf in _leaves(tree[key])]
    if isinstance(tree, tuple):  # refused before anything is moved, so a tree is never left half re-homed
        raise TypeError("parameters in a tuple cannot be moved into the optimiser's buffer: use a list")
    if isinstance(tree, list):
        return [leaf for item in tree for leaf in _leaves(item)]
    return [tree]


def _replace(tree, views):
    """Put the next view in place of each array of `tree`, in the order of _leaves."""
    items = sorted(tree) if isinstance(tree, dict) else range(len(tree))
    for key in items:
        if isinstance(tree[key], (dict, list)):
            _replace(tree[key], views)
        else:
            tree[key] = next(views)
