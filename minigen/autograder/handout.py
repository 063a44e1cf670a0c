"""ASSIGNMENT.md, the students' page of an assignment. Never shipped (only its output is)."""


def assignment_text(manifest, stub, notebooks=()):
    """ASSIGNMENT.md: what the student is to write, where, for how many points, and how to hand it in."""
    total = sum(ex["points"] for ex in manifest["exercises"])
    rows = "\n".join(f"| `{ex['name']}` | {ex['title']} | {'<br>'.join(f'`{w}`' for w in ex['where'])} "
                     f"| {ex['points']} |" for ex in manifest["exercises"])
    stub_words = ("raises `NotImplementedError` naming its exercise" if stub == "raise"
                  else "holds `...` (and so returns None)")
    forbidden = [f"`{ex['name']}` may not call {', '.join(f'`{w}`' for w in ex['forbidden'])}"
                 for ex in manifest["exercises"] if ex.get("forbidden")]
    limit = max((ex["timeout"] for ex in manifest["exercises"]), default=10)
    rules = "".join(f"\n- {rule} (it computes the answer for you)." for rule in forbidden)
    notes = ("" if not notebooks else "\n## Notebooks\n\n`notebooks/` holds " + ", ".join(f"`{n}`" for n in notebooks)
             + ": per exercise the docstring, the import and its check, and pictures of models trained with "
               "your functions. Open them with Jupyter from `notebooks/`; you still write (and hand in) the "
               "files in `minigen/`.\n")
    return f"""# Assignment: generative models from scratch

This folder is a full copy of minigen in which the functions below are yours to
write. Each one marks its place with `# YOUR CODE HERE` and {stub_words} until you do.
Their docstrings give the shapes and the formula; the rest of the library is
complete and is yours to read and call, with these exceptions:{rules or " none."}

| exercise | concept | where | points |
|---|---|---|---|
{rows}
| | | **total** | **{total}** |

## Grading yourself

Run the grader from this folder (the one holding `minigen/`, `autograder/` and this file):

    python -m autograder                        # every exercise: a report, and autograder/report.json
    python -m autograder --exercises gaussian_kl
    python -m autograder -v                     # with the full traceback of every error
    pytest autograder -m gaussian_kl            # the same checks, pytest's own output

Each exercise runs in a fresh Python process that sees only this folder's `minigen/`
(not an installed minigen) and has a time limit ({limit:g} s of CPU time, see
autograder/manifest.json): an endless loop costs that exercise only. `autograder/cases*.py` show exactly what
each check runs and how many points it is worth. A check compares your function with
numbers computed from the reference implementation and your gradients with finite
differences of your own function; a failure says where the numbers differ and, when
it recognises a common mistake, which one. Your teacher grades with other inputs than
the ones stored here, so a function that passes here only by its stored numbers gets 0.

## Adam

`adam_step` expects Algorithm 1 of Kingma & Ba (2015), as torch.optim.Adam computes it:
m ← β1·m + (1 − β1)·g, v ← β2·v + (1 − β2)·g², then
p ← p − lr·m̂ / (√v̂ + eps) with m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t), and t = 1 at the
first step (`self.t` is already counted when `update` runs). Their section 2's
"efficient" form, lr_t = lr·√(1 − β2^t) / (1 − β1^t) and p ← p − lr_t·m / (√v + eps), is
accepted too. Update `p`, `m` and `v` in place: the optimiser holds these very arrays.

## Handing in

Hand in this folder's `minigen/` folder as it is: the whole folder (or a zip of it),
named as your teacher asks (your student id). Only the files in `minigen/` are graded,
every one of them as you hand it in; do not rename or remove any, and do not rely on
anything outside it (the grader does not install or import anything else of yours).
To check what you hand in, grade it as above from this folder first.

To check the gradient of anything you write: `minigen.gradcheck.check_grad(f, x)`.
{notes}"""
