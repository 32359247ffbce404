/**
 * Browser tests of the executed notebooks, in headless Chromium:
 *
 * - HTML exports (default): opens each page, checks in the DOM that every plotly output was drawn by
 *   plotly.js (a `.merba-plotly` div holding a `main-svg` plot), saves a screenshot next to the page
 *   (`<name>.png`).
 * - JupyterLab (`--lab URL`): opens each executed notebook in a running JupyterLab (`URL` =
 *   `http://host:port/lab/tree/`, token in `--token`), checks that the `jupyterlab-plotly` renderer drew at
 *   least one figure (JupyterLab only renders the cells near the viewport), saves `jupyterlab_<name>.png`.
 *
 * Usage:
 *   deno run -A scripts/browser_test.ts out/notebooks/01_getting_started.html [...]
 *   deno run -A scripts/browser_test.ts --lab http://127.0.0.1:8765/lab/tree/ --token T out/notebooks/01_getting_started.ipynb
 * Exit status 1 when a page has no plotly output, an output was not drawn, or Chromium is missing.
 *
 * @module
 */
import { basename, dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { CHROMIUM_FLAGS, findChromium } from "../lib/viz/plotly.ts";

const { values: flags, positionals: pages } = parseArgs({
  args: Deno.args,
  options: { lab: { type: "string" }, token: { type: "string", default: "" } },
  allowPositionals: true,
});
if (!pages.length) {
  console.error(
    "usage: deno run -A scripts/browser_test.ts [--lab URL --token T] PAGE.html|NOTEBOOK.ipynb [...]",
  );
  Deno.exit(2);
}
const chromium = findChromium();
if (!chromium) {
  console.error(
    "[browser-test] no Chromium found (chromium, chromium-browser, google-chrome on PATH, or MERBA_CHROMIUM);" +
      " install it with `apt-get install chromium`",
  );
  Deno.exit(1);
}

async function chrome(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const profile = await Deno.makeTempDir({ prefix: "merba-browser-" });
  try {
    const res = await new Deno.Command(chromium!, {
      args: [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, "--allow-file-access-from-files", ...args],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(180_000),
    }).output();
    const dec = new TextDecoder();
    return { code: res.code, stdout: dec.decode(res.stdout), stderr: dec.decode(res.stderr) };
  } finally {
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

let failures = 0;
if (flags.lab) {
  for (const nb of pages) {
    const name = basename(nb, ".ipynb");
    // `reset`: start from an empty workspace, not the tabs a previous session left open.
    const url = `${flags.lab}${encodeURIComponent(basename(nb))}?reset&token=${
      encodeURIComponent(flags.token!)
    }`;
    const shot = resolve(dirname(nb), `jupyterlab_${name}.png`);
    // One launch: the DOM on stdout and the screenshot, both taken when the virtual-time budget is spent.
    const { stdout: dom, stderr } = await chrome([
      "--virtual-time-budget=60000",
      "--window-size=1280,1600",
      `--screenshot=${shot}`,
      "--dump-dom",
      url,
    ]);
    // Every figure drawn by plotly.js has exactly one plot container holding its SVG.
    const plots = dom.split('class="plot-container plotly"').slice(1).filter((p) =>
      /class="main-svg"/.test(p)
    ).length;
    const shotOk = await Deno.stat(shot).then((s) => s.size > 1000).catch(() => false);
    const ok = plots > 0 && shotOk;
    console.log(
      `[browser-test] ${ok ? "ok" : "FAILED"}: JupyterLab ${
        basename(nb)
      }: ${plots} plotly figure(s) rendered by` +
        ` jupyterlab-plotly in the viewport; screenshot ${shotOk ? shot : "missing"}`,
    );
    if (!ok) {
      failures++;
      if (!dom) console.error(stderr.split("\n").slice(-5).join("\n"));
    }
  }
  Deno.exit(failures ? 1 : 0);
}
for (const page of pages) {
  const url = new URL(`file://${await Deno.realPath(page)}`).href;
  const shot = page.replace(/\.html$/, "") + ".png";
  const { stdout: dom, stderr } = await chrome([
    "--virtual-time-budget=30000",
    "--window-size=1280,7000",
    `--screenshot=${resolve(shot)}`,
    "--dump-dom",
    url,
  ]);
  // Each plotly output div (attribute order varies: nbconvert sorts them), up to the next one.
  const starts = [...dom.matchAll(/<div\b[^>]*\bmerba-plotly\b[^>]*>/g)].map((m) => m.index!);
  const outputs = starts.map((s, i) => dom.slice(s, starts[i + 1] ?? dom.length));
  const drawn = outputs.filter((o) => /class="main-svg"/.test(o)).length;
  // The fallback text a div gets when window.Plotly is missing (not the same words inside the script).
  const notLoaded = (dom.match(/>plotly\.js not loaded</g) ?? []).length;
  const shotOk = await Deno.stat(shot).then((s) => s.size > 1000).catch(() => false);
  const ok = outputs.length > 0 && drawn === outputs.length && notLoaded === 0 && shotOk;
  console.log(
    `[browser-test] ${ok ? "ok" : "FAILED"}: ${page}: ${drawn}/${outputs.length} plotly outputs drawn` +
      `${notLoaded ? `, ${notLoaded} without plotly.js` : ""}; screenshot ${shotOk ? shot : "missing"}`,
  );
  if (!ok) {
    failures++;
    if (!dom) console.error(stderr.split("\n").slice(-5).join("\n"));
    if (!shotOk) console.error(stderr.split("\n").slice(-5).join("\n"));
  }
}
Deno.exit(failures ? 1 : 0);
