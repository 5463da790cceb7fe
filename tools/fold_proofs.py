"""Fold sphinx-proof proofs the way that works: inside a sphinx-design ``{dropdown}``.

``:class: dropdown`` on ``{prf:proof}`` breaks sphinx-togglebutton's script (a proof has no
admonition title, so the page throws a JavaScript error). This rewrites such proofs in the
markdown cells of the given notebooks, leaving outputs untouched:

    ```{prf:proof}            ````{dropdown} Proof
    :class: dropdown    →     ```{prf:proof}
    ...                       ...
    ```                       ```
                              ````

Usage: python tools/fold_proofs.py book/*.ipynb
"""

import json
import pathlib
import re
import sys

BLOCK = re.compile(r"^(`{3,})\{prf:proof\}([^\n]*)\n((?::[^\n]*\n)*)(.*?)^\1[ \t]*$", re.M | re.S)


def fold(text: str) -> str:
    def repl(m):
        fence, title, options, body = m[1], m[2], m[3], m[4]
        if ":class: dropdown" not in options:
            return m[0]
        options = "".join(line + "\n" for line in options.splitlines() if line.strip() != ":class: dropdown")
        outer = "`" * (len(fence) + 1)
        return f"{outer}{{dropdown}} Proof\n{fence}{{prf:proof}}{title}\n{options}{body}{fence}\n{outer}"
    return BLOCK.sub(repl, text)


for path in map(pathlib.Path, sys.argv[1:]):
    nb = json.loads(path.read_text())
    changed = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        src = "".join(cell["source"])
        new = fold(src)
        if new != src:
            cell["source"] = new.splitlines(keepends=True)
            changed += 1
    if changed:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    print(f"{path}: {changed} cell(s) folded")
