#!/usr/bin/env python3
"""Check executed notebooks and export their code for type checking.

Usage:
  check_notebooks.py figures EXECUTED.ipynb...          every cell ran, no errors, every expected figure present
  check_notebooks.py scripts --out DIR SOURCE.ipynb...  notebook code -> DIR/<name>.ts for `deno check`

Expected figures are declared in the source notebooks with the cell tag `figure`: such a cell must have at
least one output with a non-empty plotly figure (`application/vnd.plotly.v1+json`). A notebook must have at
least one such cell. Errors are reported per notebook and cell; exit status 1 on any problem.

The script export uses nbconvert's ScriptExporter (code cells joined in order) and rewrites relative
imports (`../mod.ts`) so they resolve from DIR; `deno check DIR/*.ts` then type-checks what the kernel
only transpiles.
"""
import argparse
import os
import re
import sys

import nbformat
from nbconvert import ScriptExporter

PLOTLY_MIME = "application/vnd.plotly.v1+json"


def check_figures(paths):
    problems = []
    rows = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        allow_errors = bool(nb.metadata.get("merba", {}).get("allow_errors", False))
        expected = found = 0
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            where = f"{path}: cell {i}"
            if cell.source.strip() and cell.get("execution_count") is None:
                problems.append(f"{where}: was not executed")
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error" and not allow_errors:
                    problems.append(f"{where}: raised {out.get('ename')}: {out.get('evalue')}")
            figs = [
                o["data"][PLOTLY_MIME]
                for o in cell.get("outputs", [])
                if PLOTLY_MIME in o.get("data", {})
            ]
            good = [f for f in figs if isinstance(f, dict) and isinstance(f.get("data"), list) and f["data"]]
            if "figure" in cell.get("metadata", {}).get("tags", []):
                expected += 1
                if good:
                    found += 1
                else:
                    problems.append(
                        f"{where}: tagged 'figure' but has no plotly figure with traces"
                        f" ({len(figs)} plotly outputs, {len(cell.get('outputs', []))} outputs)"
                    )
        if expected == 0:
            problems.append(f"{path}: no cell is tagged 'figure' (every notebook must declare its figures)")
        rows.append((os.path.basename(path), expected, found))
    print("| notebook | expected figure cells | with a figure |")
    print("|---|---|---|")
    for name, e, f in rows:
        print(f"| {name} | {e} | {f} |")
    return problems


IMPORT_RE = re.compile(r"""((?:from|import)\s*\(?\s*)(["'])(\.{1,2}/[^"']+)\2""")


def export_scripts(paths, out):
    os.makedirs(out, exist_ok=True)
    exporter = ScriptExporter()
    problems = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        # Sources may lack language_info until executed; the kernel's values are fixed.
        nb.metadata.setdefault("language_info", {})
        nb.metadata.language_info.update({"name": "typescript", "file_extension": ".ts"})
        body, _ = exporter.from_notebook_node(nb)
        src_dir = os.path.dirname(os.path.abspath(path))

        def rewrite(m):
            target = os.path.normpath(os.path.join(src_dir, m.group(3)))
            rel = os.path.relpath(target, os.path.abspath(out))
            if not rel.startswith("."):
                rel = "./" + rel
            return f"{m.group(1)}{m.group(2)}{rel}{m.group(2)}"

        body = IMPORT_RE.sub(rewrite, body)
        # Notebook cells may end in a bare expression shown as the cell's result; keep it as a statement.
        name = os.path.splitext(os.path.basename(path))[0]
        with open(os.path.join(out, f"{name}.ts"), "w", encoding="utf-8") as f:
            f.write(f"// Generated from {path} by scripts/check_notebooks.py for `deno check`; do not edit.\n")
            f.write(body)
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["figures", "scripts"])
    ap.add_argument("notebooks", nargs="+")
    ap.add_argument("--out", default="out/notebooks/typecheck")
    args = ap.parse_args()
    problems = check_figures(args.notebooks) if args.mode == "figures" else export_scripts(args.notebooks, args.out)
    for p in problems:
        print(f"[check_notebooks] {p}", file=sys.stderr)
    if problems:
        print(f"[check_notebooks] {len(problems)} problem(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
