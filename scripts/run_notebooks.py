#!/usr/bin/env python3
"""Execute Deno notebooks headless without losing outputs, then export each to HTML.

Usage: run_notebooks.py [--out DIR] [--timeout S] [--kernel NAME] NOTEBOOK...

For every notebook: execute it top to bottom in its own folder with the Deno kernel, write the executed
notebook to DIR/<name>.ipynb and an HTML export to DIR/<name>.html in which plotly outputs are drawn by
plotly.js (copied once to DIR/plotly.min.js, so the pages work offline). A summary with timings goes to
DIR/run_summary.json. Exit status 1 when any notebook fails (its partly executed copy is still written).

Why a custom client: the Deno 2.9 kernel publishes `status: idle` before its output queue is drained,
and nbclient stops reading a cell's messages at `idle`, so late outputs are silently dropped (see
deno-notebooks.md section 1.4). LateOutputClient keeps reading IOPub until it has been quiet for
`quiet_s` after `idle`. It overrides a private nbclient method: nbclient is pinned to 0.11.*.
"""
import argparse
import html
import json
import os
import re
import shutil
import sys
import time
import uuid
from queue import Empty

import nbformat
import nbclient
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionComplete, CellExecutionError, CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async
from nbconvert import HTMLExporter

PLOTLY_MIME = "application/vnd.plotly.v1+json"

if not nbclient.__version__.startswith("0.11."):
    sys.exit(f"run_notebooks.py: nbclient {nbclient.__version__} found; LateOutputClient needs nbclient==0.11.*")


class LateOutputClient(NotebookClient):
    """NotebookClient that keeps collecting a cell's outputs after `idle` until IOPub is quiet."""

    quiet_s = 0.25

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        done = False
        while True:
            try:
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=self.quiet_s if done else None))
            except Empty:
                return
            if msg["parent_header"].get("msg_id") == parent_msg_id:
                try:
                    self.process_message(msg, cell, cell_index)
                except CellExecutionComplete:
                    done = True


def plotly_html(fig):
    """HTML that draws a plotly JSON figure with window.Plotly (loaded once in the page head)."""
    div = f"plotly-{uuid.uuid4()}"
    data = json.dumps(fig).replace("</", "<\\/")
    return (
        f'<div id="{div}" class="merba-plotly"></div><script>{{const f = {data};\n'
        f'if (window.Plotly) Plotly.newPlot("{div}", f.data, f.layout || {{}}, f.config || {{}});\n'
        f'else document.getElementById("{div}").textContent = "plotly.js not loaded";}}</script>'
    )


def export_html(nb, plotly_src):
    """HTML export where every plotly output is drawn by plotly.js (`plotly_src` is loaded in <head>)."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))  # deep copy: the .ipynb stays JSON-only
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if PLOTLY_MIME in data and "text/html" not in data:
                data["text/html"] = plotly_html(data[PLOTLY_MIME])
    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(nb)
    # require.js (for widgets, from a CDN) is not needed and would turn plotly.js into an AMD module.
    body = re.sub(r'<script src="https://cdnjs\.cloudflare\.com/ajax/libs/require\.js/[^"]*"></script>', "", body)
    # Before any require.js: plotly.js registers as an AMD module when `define` exists, not as window.Plotly.
    tag = f'<script src="{html.escape(plotly_src)}"></script>'
    i = body.find("<head>")
    return body[: i + 6] + '\n<meta charset="utf-8">\n' + tag + body[i + 6 :] if i >= 0 else tag + body


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebooks", nargs="+")
    ap.add_argument("--out", default="out/notebooks")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    ap.add_argument("--kernel", default="deno")
    ap.add_argument("--plotly-js", help="plotly.min.js to copy next to the HTML exports")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    plotly_src = "plotly.min.js"
    if args.plotly_js:
        shutil.copyfile(args.plotly_js, os.path.join(args.out, plotly_src))
    summary = []
    failed = 0
    for path in args.notebooks:
        name = os.path.splitext(os.path.basename(path))[0]
        nb = nbformat.read(path, as_version=4)
        allow_errors = bool(nb.metadata.get("merba", {}).get("allow_errors", False))
        client = LateOutputClient(
            nb,
            kernel_name=args.kernel,
            timeout=args.timeout,
            allow_errors=allow_errors,
            resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}},
        )
        t0 = time.time()
        status, error = "ok", None
        print(f"[notebooks] running {path} ...", flush=True)
        try:
            client.execute()
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
            status, error = "failed", str(e)
            failed += 1
        seconds = time.time() - t0
        out_nb = os.path.join(args.out, f"{name}.ipynb")
        nbformat.write(nb, out_nb)
        with open(os.path.join(args.out, f"{name}.html"), "w", encoding="utf-8") as f:
            f.write(export_html(nb, plotly_src))
        figures = sum(
            1 for c in nb.cells for o in c.get("outputs", []) if PLOTLY_MIME in o.get("data", {})
        )
        summary.append({"notebook": path, "status": status, "seconds": round(seconds, 1), "figures": figures})
        print(f"[notebooks] {status}: {path} in {seconds:.1f} s, {figures} plotly outputs -> {out_nb}", flush=True)
        if error:
            print(error[-4000:], file=sys.stderr, flush=True)
    with open(os.path.join(args.out, "run_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    total = sum(s["seconds"] for s in summary)
    print(f"[notebooks] {len(summary) - failed} ok, {failed} failed, {total:.0f} s in all", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
