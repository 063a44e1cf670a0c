"""`minigen assign OUT_DIR`: a student copy of minigen and its autograder (minigen.assign builds them).

Part of the command line, as minigen.cli_runs is, so this module prints; minigen.assign
returns what it built and does not. In a student copy minigen.assign is a stand-in whose
functions say that the command needs the instructor's copy; this module is the same in both.
"""
from pathlib import Path

from minigen.assign import build, list_text, self_test


def add_parser(subparsers):
    """Add `minigen assign` to the CLI's subparsers."""
    p = subparsers.add_parser(
        "assign", help="build a student copy (solutions stripped) and its autograder",
        description="Write OUT_DIR/minigen (the package with the marked solutions replaced by stubs), "
                    "OUT_DIR/autograder (tests with points and reference values) and OUT_DIR/ASSIGNMENT.md.")
    p.add_argument("out_dir", nargs="?", metavar="OUT_DIR", help="where to write the assignment")
    p.add_argument("--exercises", metavar="NAMES", help="comma-separated exercises to strip (default: all)")
    p.add_argument("--list", action="store_true", help="list the exercises and their points")
    p.add_argument("--stub", choices=("raise", "ellipsis"), default="raise",
                   help="what replaces a solution: raise NotImplementedError (default) or otter's `...`")
    p.add_argument("--force", action="store_true", help="replace an assignment already in OUT_DIR")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for the checks' inputs (a private build with another seed regrades on unseen inputs)")
    p.add_argument("--private", action="store_true",
                   help="the teacher's grader for `minigen grade`: inputs never shared with any public build")
    p.add_argument("--check", action="store_true",
                   help="then grade the student copy (all must fail) and the reference (all must pass)")
    p.add_argument("--format", choices=("package", "notebook"), default="package",
                   help="notebook: also write OUT_DIR/notebooks/, a Jupyter notebook per part (needs nbformat)")
    p.set_defaults(run=run)
    return p


def run(args):
    """List the exercises, or build (and with --check, self-test) an assignment; prints what it wrote."""
    if args.list:
        print(list_text())
        return 0
    if not args.out_dir:
        raise ValueError("give OUT_DIR, the folder to write the assignment to (or --list)")
    chosen = build(args.out_dir, args.exercises, args.stub, args.force, args.seed, args.private,
                   notebooks=args.format == "notebook")
    out = Path(args.out_dir)
    print(f"wrote {out / 'minigen'} with {len(chosen)} exercises stripped: {', '.join(ex.name for ex in chosen)}")
    print(f"grade it with: cd {out} && python -m autograder")
    if args.check:
        reports, problems = self_test(out)
        for name, (report, _) in reports.items():
            print(f"self-test: {name} scores {report['points']}/{report['max_points']}")
        if problems:
            raise ValueError("self-test failed:\n  " + "\n  ".join(problems))
    return 0
