"""Parameter trees: nested dicts and lists (or tuples) whose leaves are arrays.

The layers make their parameters as such trees; the optimisers, value_and_grad,
the NaN guard and the checkpoints all walk them in one order, the one fixed here
(dict keys sorted), so that the i-th array of a gradient tree is the i-th array
of its parameter tree.
"""


def leaves(tree):
    """The arrays of a nested dict/list, in a fixed order (dict keys sorted)."""
    if isinstance(tree, dict):
        return [leaf for key in sorted(tree) for leaf in leaves(tree[key])]
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in leaves(item)]
    return [tree]


def rebuild(tree, items):
    """A tree shaped like `tree` whose leaves are taken, in the order of `leaves`, from the iterator `items`."""
    if isinstance(tree, dict):
        return {key: rebuild(tree[key], items) for key in sorted(tree)}
    if isinstance(tree, (list, tuple)):
        return type(tree)(rebuild(item, items) for item in tree)
    return next(items)
