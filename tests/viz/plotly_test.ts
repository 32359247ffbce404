import assert from "node:assert/strict";
import {
  ChromiumNotFoundError,
  describeFigure,
  exportFigure,
  figureHtmlPage,
  findChromium,
  inJupyter,
  LiveFigure,
  PLOTLY_MIME,
  plotlyBundle,
  plotlyJsPath,
  showFigure,
  toPlainFigure,
} from "../../lib/viz/plotly.ts";

const fig = {
  data: [{ type: "scatter", x: [1, 2, 3], y: new Float32Array([1, Infinity, 0.5]) }],
  layout: { title: { text: "curve <b>A</b>" } },
};

Deno.test("plotlyBundle: plotly JSON with plain arrays + text/plain, no HTML unless asked", () => {
  const b = plotlyBundle(fig);
  assert.deepEqual(Object.keys(b).sort(), [PLOTLY_MIME, "text/plain"].sort());
  const json = b[PLOTLY_MIME] as { data: { y: unknown }[]; layout: unknown };
  // typed array expanded, Infinity -> null (a gap in plotly)
  assert.deepEqual(json.data[0].y, [1, null, 0.5]);
  assert.deepEqual(json.layout, fig.layout);
  assert.equal(b["text/plain"], 'plotly figure "curve A": 1 trace (scatter)');
});

Deno.test("plotlyBundle: inlinePlotly adds a self-running HTML output, script-safe", () => {
  const tricky = { data: [{ type: "bar", y: [1], name: "</script><b>x</b>" }] };
  const b = plotlyBundle(tricky, { inlinePlotly: "/*fake plotly*/ window.Plotly = {};" });
  const html = b["text/html"] as string;
  assert.match(html, /^<div id="plotly-[0-9a-f-]+" class="merba-plotly"><\/div><script>\/\*fake plotly\*\//);
  assert.ok(html.includes('Plotly.newPlot("plotly-'));
  // the trace name cannot close the script element early
  assert.equal(html.match(/<\/script>/g)?.length, 2);
  assert.ok(html.includes("<\\/script><b>x<\\/b>"));
  // the real pinned plotly.js is found and inlined
  const real = plotlyBundle(tricky, { inlinePlotly: true })["text/html"] as string;
  assert.ok(real.length > 1_000_000, `inlined plotly.js is ${real.length} chars`);
  assert.ok(plotlyJsPath().endsWith("plotly.min.js"));
});

Deno.test("plotlyBundle / toPlainFigure reject malformed figures with a TypeError naming the problem", () => {
  assert.throws(() => plotlyBundle({} as never), {
    name: "TypeError",
    message: /fig must be \{data: trace\[\]/,
  });
  assert.throws(() => toPlainFigure({ data: [1] } as never), { name: "TypeError", message: /fig.data\[0\]/ });
});

Deno.test("describeFigure counts traces and lists types once", () => {
  assert.equal(
    describeFigure({ data: [{ type: "heatmap" }, { type: "heatmap" }, {}] }),
    "plotly figure: 3 traces (heatmap, scatter)",
  );
});

Deno.test("showFigure outside Jupyter prints the text line; update needs a display id", async () => {
  assert.equal(inJupyter(), false);
  const logged: unknown[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => logged.push(...a);
  try {
    await showFigure(fig);
    await new LiveFigure("x").show(fig);
  } finally {
    console.log = orig;
  }
  assert.deepEqual(logged, [
    'plotly figure "curve A": 1 trace (scatter)',
    'plotly figure "curve A": 1 trace (scatter)',
  ]);
  await assert.rejects(() => showFigure(fig, { update: true }), { name: "TypeError", message: /displayId/ });
});

Deno.test("figureHtmlPage references or inlines plotly.js", () => {
  const page = figureHtmlPage(fig, { plotlySrc: "plotly.min.js" });
  assert.ok(page.includes('<script src="plotly.min.js"></script>'));
  assert.ok(page.includes("<title>curve A</title>"));
});

Deno.test("exportFigure: clear error without Chromium, RangeError for unknown format", async () => {
  await assert.rejects(
    () => exportFigure(fig, "/tmp/x.png", { chromium: "/nonexistent/chromium" }),
    (e: Error) => {
      assert.ok(e instanceof ChromiumNotFoundError);
      assert.match(
        e.message,
        /needs headless Chromium.*\/nonexistent\/chromium.*apt-get install chromium.*MERBA_CHROMIUM/s,
      );
      return true;
    },
  );
  await assert.rejects(() => exportFigure(fig, "/tmp/x.gif"), {
    name: "RangeError",
    message: /\.png or \.svg/,
  });
});

const chromium = findChromium();
Deno.test({
  name: "exportFigure writes a real PNG and SVG through headless Chromium",
  ignore: !chromium,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const f = { data: [{ type: "bar", x: ["a", "b"], y: [2, 3] }], layout: { title: { text: "bars" } } };
      const png = await Deno.readFile(await exportFigure(f, `${dir}/f.png`, { width: 320, height: 200 }));
      assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
      const dv = new DataView(png.buffer, png.byteOffset);
      assert.deepEqual([dv.getUint32(16), dv.getUint32(20)], [320, 200]); // IHDR width, height
      const svg = await Deno.readTextFile(await exportFigure(f, `${dir}/f.svg`, { width: 320, height: 200 }));
      assert.match(svg, /^<svg[^>]*width="320"[^>]*height="200"/);
      assert.ok(svg.includes(">bars<"), "the title text is in the SVG");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
if (!chromium) {
  console.warn("exportFigure Chromium test skipped: no chromium on PATH (apt-get install chromium)");
}
