"""Compare the stored outputs of notebooks with those of a git revision, cell by cell.

    python dev/compare_outputs.py REV book/01_derivation_a.ipynb [...]

Cells are paired in order among code cells (a change that only renames keeps the cell
count). For each pair it reports outputs that differ: text (stream, text/plain, markdown,
glued values) is shown as a diff, consecutive chunks of one stream joined; images are only counted. Exit code 1 if any text differs.
"""
import difflib
import json
import subprocess
import sys


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def texts(cell):
    out, images = [], 0
    for o in cell.get("outputs", []):
        if o["output_type"] == "stream":  # a stream may be cut into chunks anywhere: join them
            text = "".join(o["text"])
            if out and out[-1].startswith(f"[{o['name']}] "):
                out[-1] += text
            else:
                out.append(f"[{o['name']}] " + text)
        elif o["output_type"] == "error":
            out.append(f"[error] {o['ename']}: {o['evalue']}")
        else:
            for mime, data in sorted(o.get("data", {}).items()):
                if mime.startswith("image/"):
                    images += 1
                    continue
                out.append(f"[{mime}] " + ("".join(data) if isinstance(data, list) else json.dumps(data)))
    return out, images


def main(rev, paths):
    changed = False
    for path in paths:
        old = json.loads(subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True,
                                        check=True).stdout)
        new = json.load(open(path))
        a, b = code_cells(old), code_cells(new)
        if len(a) != len(b):
            print(f"{path}: {len(a)} code cells at {rev}, {len(b)} now")
            changed = True
            continue
        n_diff = 0
        for i, (x, y) in enumerate(zip(a, b)):
            (tx, ix), (ty, iy) = texts(x), texts(y)
            if tx != ty:
                n_diff += 1
                changed = True
                print(f"--- {path} code cell {i}")
                for line in difflib.unified_diff("\n".join(tx).splitlines(), "\n".join(ty).splitlines(),
                                                 lineterm="", n=0):
                    if not line.startswith(("---", "+++", "@@")):
                        print("   ", line)
            if ix != iy:
                print(f"    {path} code cell {i}: {ix} images at {rev}, {iy} now")
        print(f"{path}: {len(a)} code cells, {n_diff} with different text outputs")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
