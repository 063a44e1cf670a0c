"""Solution markers: find them (with tokenize, so text in a string is never a marker) and cut them out.

A solution is a block between two comment lines on their own, `# BEGIN SOLUTION` and
`# END SOLUTION` (a single '#': the form nbgrader and otter-grader both read), or one
statement ending in `# SOLUTION` (otter's one-line form). `NO PROMPT` after either
removes the code without a stub. Anything that looks like a marker but is not exactly
one, nested or unclosed blocks, markers inside brackets or outside a function are
errors: a marker that silently fails to match ships the solution. Never shipped.
"""
import ast
import io
import re
import tokenize
from dataclasses import dataclass

MARKER = re.compile(r"#+\s*(?:(BEGIN|END)\s+)?SOLUTION(\s+NO\s+PROMPT)?\s*", re.IGNORECASE)
CANONICAL = re.compile(r"# (?:(BEGIN|END) )?SOLUTION( NO PROMPT)?\s*")
MARKER_TEXT = re.compile(r"(BEGIN|END)\s+SOLUTION|#\s*SOLUTION\b", re.IGNORECASE)  # the leak check


class MarkerError(ValueError):
    """A solution marker that would make the student copy leak or fail to import."""


@dataclass
class Region:
    """A marked solution: a BEGIN/END block (rows first..last, markers included) or one `# SOLUTION` line."""

    kind: str          # "block" or "line"
    first: int         # 1-based rows
    last: int
    indent: str        # indentation of the stub that replaces it
    no_prompt: bool    # "NO PROMPT": removed without a stub
    code_end: int = 0  # "line" regions: the column where the trailing comment starts
    path: str = ""     # "minigen/losses.py", and the function that holds it, filled by locate()
    qualname: str = ""
    site: str = ""     # "losses.gaussian_kl", "optim.Adam.update": the names the exercises use


def find_regions(text, path):
    """Solution regions of one source file, from its tokens (markers inside strings are not markers)."""
    regions, open_block, depth, logical_start = [], None, 0, None
    lines = text.splitlines()
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            logical_start = None
        elif logical_start is None and tok.type not in (tokenize.NL, tokenize.COMMENT, tokenize.INDENT,
                                                        tokenize.DEDENT):
            logical_start = tok.start[0]
        if tok.type != tokenize.COMMENT or not MARKER.fullmatch(tok.string):
            continue
        row, col = tok.start
        where = f"{path}:{row}"
        canonical = CANONICAL.fullmatch(tok.string)
        if not canonical:
            raise MarkerError(f"{where}: {tok.string.strip()!r} looks like a solution marker but is not one; "
                              f"write exactly '# BEGIN SOLUTION', '# END SOLUTION' or '# SOLUTION'")
        what, no_prompt = canonical.group(1), canonical.group(2) is not None
        before = lines[row - 1][:col]
        if what is None:  # one-line form: code, then "# SOLUTION", on one complete statement
            nxt = tokens[i + 1].type if i + 1 < len(tokens) else None
            if not before.strip() or logical_start != row or nxt != tokenize.NEWLINE:
                raise MarkerError(f"{where}: '# SOLUTION' must end a one-line statement (code, then the comment)")
            if open_block:
                raise MarkerError(f"{where}: '# SOLUTION' inside the block opened at line {open_block.first}")
            indent = before[:len(before) - len(before.lstrip())]
            regions.append(Region("line", row, row, indent, no_prompt, code_end=col))
            continue
        if before.strip():
            raise MarkerError(f"{where}: '# {what} SOLUTION' must be on a line of its own")
        if depth:
            raise MarkerError(f"{where}: '# {what} SOLUTION' inside brackets; markers go between statements")
        if what.upper() == "BEGIN":
            if open_block:
                raise MarkerError(f"{where}: nested '# BEGIN SOLUTION' (the block opened at line "
                                  f"{open_block.first} is still open)")
            open_block = Region("block", row, 0, before, no_prompt)
        else:
            if not open_block:
                raise MarkerError(f"{where}: '# END SOLUTION' without a '# BEGIN SOLUTION' before it")
            if before != open_block.indent:
                raise MarkerError(f"{where}: '# END SOLUTION' is indented differently from its BEGIN at line "
                                  f"{open_block.first}")
            open_block.last = row
            regions.append(open_block)
            open_block = None
    if open_block:
        raise MarkerError(f"{path}:{open_block.first}: '# BEGIN SOLUTION' is never closed")
    return regions


def _functions(tree, prefix=""):
    """(first row, last row, qualified name) of every function and method, outermost first."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = prefix + node.name
            if not isinstance(node, ast.ClassDef):
                yield node.lineno, node.end_lineno, name
            yield from _functions(node, name + ".")


def locate(regions, text, path, module):
    """Fill in each region's site, "module.qualname" of the innermost function holding all of it."""
    functions = list(_functions(ast.parse(text, str(path))))
    for region in regions:
        # A function's last AST row is its last statement: an END marker may sit just after it.
        inner_last = region.last - 1 if region.kind == "block" else region.last
        holders = [name for first, last, name in functions if first < region.first and inner_last <= last]
        if not holders:
            raise MarkerError(f"{path}:{region.first}: marked code outside any function; exercises are "
                              f"function bodies")
        region.path, region.qualname, region.site = str(path), holders[-1], f"{module}.{holders[-1]}"


def stub_lines(exercise, region, stub):
    """What a student sees in place of the solution."""
    indent = region.indent
    if stub == "ellipsis":  # otter's form; it returns None silently, so it is only an option
        return [f"{indent}# YOUR CODE HERE", f"{indent}..."]
    message = f"{exercise}: not implemented yet (write {region.qualname} in {region.path})"
    return [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError({message!r})"]


def strip_source(text, regions, selected, stub="raise"):
    """The student's version of one file. regions: with .site set; selected: {site: exercise}
    for the solutions to cut. Other regions keep their code and lose their markers."""
    lines, out, row = text.splitlines(), [], 1
    previous = None  # the last stub written, to merge runs of one-line "# SOLUTION" statements
    for region in regions:
        out.extend(lines[row - 1:region.first - 1])
        exercise = selected.get(region.site)
        if region.kind == "line" and exercise is None:
            out.append(lines[region.first - 1][:region.code_end].rstrip())
        elif region.kind == "block" and exercise is None:
            out.extend(lines[region.first:region.last - 1])
        elif not region.no_prompt:
            if region.kind == "line" and stub == "ellipsis":
                out.append(_ellipsis_statement(lines[region.first - 1][:region.code_end], region.indent))
            elif not (region.kind == "line" and previous == (region.first - 1, region.indent, exercise)):
                out.extend(stub_lines(exercise, region, stub))
            previous = (region.last, region.indent, exercise)
        row = region.last + 1
    out.extend(lines[row - 1:])
    return "\n".join(out) + "\n"


def _ellipsis_statement(code, indent):
    """otter's one-line stub: `x = 2  # SOLUTION` -> `x = ...`, `return y  # SOLUTION` -> `return ...`."""
    node = ast.parse(code.strip()).body[0]
    if isinstance(node, ast.Assign):
        return indent + " = ".join(ast.unparse(t) for t in node.targets) + " = ..."
    return indent + ("return ..." if isinstance(node, ast.Return) else "...")
