"""Remove per-run metadata that jupyter/nbclient stores in notebooks (execution timestamps).

Usage: python dev/clean_notebook.py book/*.ipynb  (``make run`` calls it after executing.)
"""

import json
import pathlib
import sys

for path in map(pathlib.Path, sys.argv[1:]):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("execution", None)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
