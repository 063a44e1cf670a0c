"""What a student copy may hold, and the leak check over every byte of it. Never shipped.

The copy is built from an allow-list, not from "everything but": the package's .py
files and the data its code loads (the packaged MNIST sample, the FID classifier's
weights, the pretrained models and `minigen check`'s bands). Hidden files (an editor's
.optim.py.swp or .#losses.py), backups (losses.py~, .orig), caches and anything else in
a working copy stay home.

Then every file that would ship is searched, bytes and all: text files line by line,
binary files (and the members of .npz/.zip and .gz files, decompressed) as bytes, for
the marker text and for the lines of the stripped solutions.
"""
import fnmatch
import gzip
import io
import re
import zipfile
from collections import Counter
from pathlib import Path

from minigen.autograder.strip import MARKER_TEXT

NOT_SHIPPED = ("autograder", "assign.py")  # the instructor's side stays home
ALLOWED = ("*.py", "mnist_sample/*-ubyte.gz", "mnist_sample/README.md", "weights/*.npz", "weights/README.md",
           "weights/pretrained/*.npz", "weights/pretrained/*.json", "weights/pretrained/README.md", "bands/*.json")
MARKER_BYTES = re.compile(MARKER_TEXT.pattern.encode(), re.IGNORECASE)


def shipped(rel):
    """Whether the package file at relative path `rel` (a PurePosixPath-like Path) goes into a student copy."""
    parts = rel.parts
    return (parts[0] not in NOT_SHIPPED and not any(p.startswith(".") or p == "__pycache__" for p in parts)
            and any(fnmatch.fnmatchcase(rel.as_posix(), pattern) for pattern in ALLOWED))


def package_files(src):
    """The files of the package at `src` that ship, as relative paths, sorted (symlinks never do)."""
    src = Path(src)
    return [p.relative_to(src) for p in sorted(src.rglob("*"))
            if p.is_file() and not p.is_symlink() and shipped(p.relative_to(src))]


def _blobs(data):
    """The bytes of a file and, for a zip (.npz) or gzip file, its decompressed contents."""
    yield data
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                yield from (z.read(name) for name in z.namelist())
        except (zipfile.BadZipFile, OSError):
            pass
    elif data[:2] == b"\x1f\x8b":
        try:
            yield gzip.decompress(data)
        except (OSError, EOFError):
            pass


def _binary_leaks(name, data, solutions):
    found = []
    for blob in _blobs(data):
        hit = MARKER_BYTES.search(blob)
        if hit:
            found.append(f"{name}: binary file holds marker text {hit.group().decode(errors='replace')!r}")
        found += [f"{name}: binary file holds solution text {line!r}" for line in solutions
                  if len(line) >= 10 and line.encode() in blob]
    return found


def find_leaks(folder, solutions, elsewhere):
    """Where the files under `folder` hold marker text, or a solution line beyond the number of times the
    library has that line outside the solutions (`denom += self.eps` is RMSprop's as well as Adam's: a
    shared idiom, not a leak). Outside minigen/ (the autograder, ASSIGNMENT.md) a longer solution line may
    not appear even inside another line; in a binary file no solution line may appear at all."""
    allowed = Counter(line for line in elsewhere if line in solutions)
    long_lines = [line for line in solutions if len(line) >= 25]
    leaks, seen = [], Counter()
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file():
            continue
        rel, data = path.relative_to(folder), path.read_bytes()
        try:
            if data[:4] == b"PK\x03\x04" or data[:2] == b"\x1f\x8b":
                raise UnicodeDecodeError("utf-8", data[:1], 0, 1, "compressed")
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            leaks += _binary_leaks(rel, data, solutions)
            continue
        in_package = rel.parts[0] == "minigen"
        for number, line in enumerate(text.splitlines(), 1):
            key = line.strip()
            seen[key] += key in solutions
            if (MARKER_TEXT.search(line) or (key in solutions and seen[key] > allowed[key])
                    or (not in_package and any(sol in line for sol in long_lines))):
                leaks.append(f"{rel}:{number}: {key}")
    return leaks
