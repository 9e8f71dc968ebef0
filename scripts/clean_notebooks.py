"""Keep notebooks committed clean: no outputs except in cells tagged `nbval-check-output`, no run metadata.

Usage: python scripts/clean_notebooks.py [--check] notebooks/*.ipynb
With --check nothing is written; the exit code is 1 when a notebook would change.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

TAG = "nbval-check-output"  # nbval compares these cells' outputs with the committed ones
RUN_METADATA = ("papermill", "execution", "widgets")


def clean(notebook: dict) -> dict:
    for key in RUN_METADATA:
        notebook.get("metadata", {}).pop(key, None)
    for cell in notebook.get("cells", []):
        for key in RUN_METADATA:
            cell.get("metadata", {}).pop(key, None)
        if cell.get("cell_type") != "code":
            continue
        if TAG in cell.get("metadata", {}).get("tags", []):
            cell["outputs"] = [o for o in cell.get("outputs", []) if o.get("output_type") == "stream"]
            for output in cell["outputs"]:
                output.pop("metadata", None)
            cell["execution_count"] = 1 if cell["outputs"] else None
        else:
            cell["outputs"], cell["execution_count"] = [], None
    return notebook


def main(argv: list[str]) -> int:
    check = "--check" in argv
    changed = []
    for name in (a for a in argv if a != "--check"):
        path = Path(name)
        before = path.read_text()
        after = json.dumps(clean(json.loads(before)), indent=1, ensure_ascii=False) + "\n"
        if after != before:
            changed.append(str(path))
            if not check:
                path.write_text(after)
    for name in changed:
        print(("would clean " if check else "cleaned ") + name)
    return 1 if check and changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
