"""Imports point down: the module list in minigen/__init__.py's docstring is the order, bottom up,
and no module imports one listed after it — at the top of the file or inside a function."""
import ast
from pathlib import Path

import minigen

PACKAGE = Path(minigen.__file__).resolve().parent


def declared_order():
    """The layer names of minigen/__init__.py's docstring, bottom up: its indented lines' first words."""
    lines = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text())).splitlines()
    return [line.split()[0] for line in lines if line.startswith("    ") and line.strip()]


def layer_of(path):
    """The layer a file belongs to: "ops", "models.vae", "models" (the registry), "autograder" (the whole
    package), "" (minigen/__init__.py, which holds only the version)."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[0] == "autograder":
        return "autograder"
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join(parts)


def module_file(dotted):
    """minigen/a/b.py or minigen/a/b/__init__.py for "a.b" ("" is the package itself), or None."""
    base = PACKAGE.joinpath(*dotted.split(".")) if dotted else PACKAGE
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_layers(path, source=None):
    """(line, layer) of every minigen module that `path` (or `source`, as if it were that file)
    imports, wherever the import statement is: top level or inside a function."""
    package = path.relative_to(PACKAGE).parent.parts
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.Import):
            candidates = [[alias.name] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from .compare import verify: relative to the file's package
                base = ".".join(["minigen", *package[:len(package) - node.level + 1], *filter(None, [base])])
            # `from X import a`: the arrow goes to the module X.a if there is one, else to X
            candidates = [[f"{base}.{alias.name}", base] for alias in node.names]
        else:
            continue
        for names in candidates:
            files = [module_file(name.removeprefix("minigen").removeprefix(".")) for name in names
                     if name == "minigen" or name.startswith("minigen.")]
            found = next((f for f in files if f is not None), None)
            if found is not None:
                yield node.lineno, layer_of(found)


def upward_imports():
    order = declared_order()
    rank = {name: i for i, name in enumerate(order)}
    rank[""] = -1  # minigen/__init__.py: only __version__, below everything
    unplaced, upward = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = layer_of(path)
        if layer not in rank:
            unplaced.append(str(path.relative_to(PACKAGE)))
            continue
        for line, target in sorted(set(imported_layers(path))):
            if target != layer and rank.get(target, len(order)) > rank[layer]:
                upward.append(f"{path.relative_to(PACKAGE)}:{line} ({layer}) imports {target}")
    return unplaced, upward


def test_every_module_is_placed_in_the_declared_order():
    unplaced, _ = upward_imports()
    assert not unplaced, f"modules missing from minigen/__init__.py's list: {unplaced}"


def test_no_module_imports_one_above_it():
    _, upward = upward_imports()
    assert not upward, "imports that point up the layers:\n" + "\n".join(upward)


def test_the_checker_sees_lazy_and_relative_imports():
    """The checker must find an import inside a function and a relative one, or it proves nothing."""
    code = ("def f():\n    from minigen import cli, ops\n    from minigen.models import vae\n"
            "from ..train import Run\nfrom minigen.models.gan import GAN\nimport minigen.viz\n")
    found = set(imported_layers(PACKAGE / "models" / "probe.py", code))
    assert found == {(2, "cli"), (2, "ops"), (3, "models.vae"), (4, "train"), (5, "models.gan"), (6, "viz")}


def defined_names(path):
    """Names a module defines itself at top level (def, class, assignment), not ones it imports."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def test_each_name_is_imported_from_the_module_that_defines_it():
    """One home per name: `from minigen.X import name` must find `name` defined in X (or a submodule
    X.name), not passed through an import of X's, as binarize once was through models.vae."""
    root = PACKAGE.parent
    wrong = []
    for path in sorted([*PACKAGE.rglob("*.py"), *(root / "demos").glob("*.py"), *(root / "benchmarks").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                    and node.module.startswith("minigen")):
                continue
            source = module_file(node.module.removeprefix("minigen").removeprefix("."))
            if source is None:
                continue
            for alias in node.names:
                submodule = module_file(f"{node.module}.{alias.name}".removeprefix("minigen").removeprefix("."))
                if submodule is None and alias.name not in defined_names(source):
                    wrong.append(f"{path.relative_to(root)}:{node.lineno} imports {alias.name} from {node.module}")
    assert not wrong, "names imported from a module that only imports them:\n" + "\n".join(wrong)
