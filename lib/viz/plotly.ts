/**
 * Plotly figures in the Deno Jupyter kernel: MIME bundles, live updates through a display id, standalone
 * HTML pages, and static PNG/SVG export through headless Chromium.
 *
 * plotly.js cannot run inside Deno (it needs a DOM with text measurement), so figures are plain JSON
 * (`{data, layout, config}`) rendered by the frontend:
 * - JupyterLab / Notebook 7 render `application/vnd.plotly.v1+json` with the `jupyterlab-plotly` extension,
 *   which ships inside the Python `plotly` package (`scripts/notebooks.sh` installs it in `.venv`).
 * - VS Code renders it natively (Jupyter renderers extension).
 * - Anywhere else, opt in to `inlinePlotly` for a `text/html` output that carries plotly.js itself
 *   (about 4.6 MB per output; runs only in trusted notebooks).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { join } from "node:path";

/** One plotly trace (`{type: "heatmap", z: [[...]]}`, ...): plain JSON, no typed arrays needed. */
export type PlotlyTrace = Record<string, unknown>;

/** A plotly figure: traces, layout and config, exactly as `Plotly.newPlot(div, data, layout, config)` takes them. */
export interface PlotlyFigure {
  data: PlotlyTrace[];
  layout?: Record<string, unknown>;
  config?: Record<string, unknown>;
}

/** A Jupyter MIME bundle (`mime type -> data`), as `Deno.jupyter.display(bundle, {raw: true})` sends it. */
export type MimeBundle = Record<string, string | object>;

/** The MIME type JupyterLab's plotly extension and VS Code render. */
export const PLOTLY_MIME = "application/vnd.plotly.v1+json";

/** Options of {@link plotlyBundle}. */
export interface PlotlyBundleOptions {
  /**
   * Add a `text/html` output that runs the figure with plotly.js inlined (`true`: the pinned
   * `plotly.js-dist-min`; a string: that plotly.js source). Off by default: it adds ~4.6 MB per output.
   * @default false
   */
  inlinePlotly?: boolean | string;
}

/** Checks the figure shape once at the boundary: `data` must be an array of trace objects. */
function validateFigure(fig: PlotlyFigure, fn: string): void {
  if (fig === null || typeof fig !== "object" || !Array.isArray(fig.data)) {
    throw new TypeError(`${fn}: fig must be {data: trace[], layout?, config?}, got ${describe(fig)}`);
  }
  fig.data.forEach((t, i) => {
    if (t === null || typeof t !== "object" || Array.isArray(t)) {
      throw new TypeError(`${fn}: fig.data[${i}] must be a trace object, got ${describe(t)}`);
    }
  });
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (typeof v === "object") {
    return `an object with keys [${Object.keys(v as object).slice(0, 6).join(", ")}]`;
  }
  return `${typeof v} ${String(v).slice(0, 40)}`;
}

/** JSON replacer: typed arrays become plain arrays, non-finite numbers `null` (plotly draws gaps). */
function plainReplacer(_key: string, value: unknown): unknown {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return Array.from(value as unknown as ArrayLike<number>);
  }
  return value;
}

/**
 * The figure as plain JSON (typed arrays expanded, `NaN`/`Infinity` as `null`), safe for any frontend.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toPlainFigure } from "./plotly.ts";
 * const fig = toPlainFigure({ data: [{ type: "scatter", y: new Float32Array([1, NaN]) }] });
 * assert.deepEqual(fig.data[0].y, [1, null]);
 * ```
 */
export function toPlainFigure(fig: PlotlyFigure): PlotlyFigure {
  validateFigure(fig, "toPlainFigure");
  return JSON.parse(JSON.stringify(fig, plainReplacer));
}

/** The figure's title text (`layout.title` as a string or `{text}`), or undefined. */
export function figureTitle(fig: PlotlyFigure): string | undefined {
  const t = fig.layout?.title;
  if (typeof t === "string") return t;
  if (t && typeof t === "object" && typeof (t as { text?: unknown }).text === "string") {
    return (t as { text: string }).text;
  }
  return undefined;
}

/** One-line text description of a figure: title, trace count and trace types. */
export function describeFigure(fig: PlotlyFigure): string {
  const title = figureTitle(fig);
  const types = [...new Set(fig.data.map((t) => String(t.type ?? "scatter")))].join(", ");
  const n = fig.data.length;
  return `plotly figure${title ? ` "${title.replace(/<[^>]+>/g, "")}"` : ""}: ${n} trace${
    n === 1 ? "" : "s"
  } (${types})`;
}

let plotlyJsCache: string | undefined;

/** The path of the pinned plotly.js bundle (`plotly.js-dist-min` in deno.json). */
export function plotlyJsPath(): string {
  const url = import.meta.resolve("plotly.js-dist-min");
  if (!url.startsWith("file:")) {
    throw new Error(
      `plotly.js-dist-min resolved to ${url}, not a local file; run \`deno install\` in the project first`,
    );
  }
  return decodeURIComponent(new URL(url).pathname);
}

/** The source of the pinned plotly.js bundle, read once. */
export function plotlyJsSource(): string {
  plotlyJsCache ??= Deno.readTextFileSync(plotlyJsPath());
  return plotlyJsCache;
}

/** Escapes text for a `<script>` body (no early `</script>`). */
function scriptSafe(s: string): string {
  return s.replaceAll("</", "<\\/");
}

/**
 * An HTML fragment (`<div>` + `<script>`) that draws the figure with `window.Plotly`; with `plotlyJs`, the
 * library is inlined before it.
 */
export function figureHtmlFragment(fig: PlotlyFigure, plotlyJs?: string): string {
  const plain = toPlainFigure(fig);
  const id = `plotly-${crypto.randomUUID()}`;
  const lib = plotlyJs ? `<script>${plotlyJs.replaceAll("</script", "<\\/script")}</script>` : "";
  return `<div id="${id}" class="merba-plotly"></div>${lib}<script>{const f = ${
    scriptSafe(JSON.stringify(plain))
  };
if (window.Plotly) Plotly.newPlot("${id}", f.data, f.layout ?? {}, f.config ?? {});
else document.getElementById("${id}").textContent = "plotly.js not loaded: ${
    describeFigure(plain).replaceAll('"', "'")
  }";}</script>`;
}

/**
 * The MIME bundle of a figure for `Deno.jupyter.display(bundle, {raw: true})`: the plotly JSON (rendered
 * by JupyterLab with `jupyterlab-plotly` and by VS Code), a `text/plain` line, and on request a `text/html`
 * output with plotly.js inlined.
 *
 * @throws {TypeError} when `fig` is not `{data: trace[], ...}`.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { plotlyBundle, PLOTLY_MIME } from "./plotly.ts";
 * const b = plotlyBundle({ data: [{ type: "bar", y: [1, 2] }], layout: { title: { text: "bars" } } });
 * assert.equal(b["text/plain"], 'plotly figure "bars": 1 trace (bar)');
 * assert.ok(PLOTLY_MIME in b && !("text/html" in b));
 * ```
 */
export function plotlyBundle(fig: PlotlyFigure, opts: PlotlyBundleOptions = {}): MimeBundle {
  validateFigure(fig, "plotlyBundle");
  const plain = toPlainFigure(fig);
  const bundle: MimeBundle = {
    [PLOTLY_MIME]: plain,
    "text/plain": describeFigure(plain),
  };
  if (opts.inlinePlotly) {
    const js = typeof opts.inlinePlotly === "string" ? opts.inlinePlotly : plotlyJsSource();
    bundle["text/html"] = figureHtmlFragment(plain, js);
  }
  return bundle;
}

/**
 * True inside the Deno Jupyter kernel (`deno jupyter`), where `Deno.jupyter` exists; elsewhere Deno
 * throws on access.
 */
export function inJupyter(): boolean {
  try {
    return typeof Deno.jupyter?.display === "function";
  } catch {
    return false;
  }
}

/** Options of {@link showFigure}. */
export interface ShowFigureOptions extends PlotlyBundleOptions {
  /** Jupyter display id: a later call with the same id and `update: true` replaces this output. */
  displayId?: string;
  /** Replace the output created earlier with the same `displayId` instead of adding one. */
  update?: boolean;
}

/**
 * Shows a figure in the notebook (one `display_data` output). With `displayId` + `update: true` the earlier
 * output with that id is replaced in place (live curves). Outside Jupyter it prints the text description.
 *
 * @throws {TypeError} for a malformed figure, or `update` without `displayId`.
 * @example
 * ```ts ignore
 * await showFigure(fig, { displayId: "loss" });               // creates the output
 * await showFigure(next, { displayId: "loss", update: true }); // replaces it
 * ```
 */
export async function showFigure(fig: PlotlyFigure, opts: ShowFigureOptions = {}): Promise<void> {
  if (opts.update && !opts.displayId) {
    throw new TypeError("showFigure: update: true needs a displayId naming the output to replace");
  }
  const bundle = plotlyBundle(fig, opts);
  if (!inJupyter()) {
    console.log(bundle["text/plain"]);
    return;
  }
  await Deno.jupyter.display(bundle, {
    raw: true,
    ...(opts.displayId ? { display_id: opts.displayId } : {}),
    ...(opts.update ? { update: true } : {}),
  });
}

/**
 * A figure output that can be redrawn in place: the first {@link LiveFigure.show} creates it, later calls
 * replace it (Jupyter `update_display_data`).
 *
 * @example
 * ```ts ignore
 * const live = new LiveFigure();
 * for (const epoch of [1, 2, 3]) await live.show(curvesFigure(history));
 * ```
 */
export class LiveFigure {
  /** The Jupyter display id of this output. */
  readonly displayId: string;
  #shown = false;
  /** @param displayId defaults to a random id. */
  constructor(displayId: string = `merba-${crypto.randomUUID()}`) {
    this.displayId = displayId;
  }
  /** Shows the figure (first call) or replaces the shown one. */
  async show(fig: PlotlyFigure, opts: PlotlyBundleOptions = {}): Promise<void> {
    await showFigure(fig, { ...opts, displayId: this.displayId, update: this.#shown });
    this.#shown = true;
  }
}

/**
 * A standalone HTML page that draws the figure. By default it loads plotly.js from `plotlySrc` (a URL or
 * path next to the page); `inlinePlotly: true` embeds the pinned plotly.js so the page works anywhere offline.
 */
export function figureHtmlPage(
  fig: PlotlyFigure,
  opts: { inlinePlotly?: boolean; plotlySrc?: string; title?: string } = {},
): string {
  const title = opts.title ?? figureTitle(fig) ?? "figure";
  const head = opts.inlinePlotly
    ? `<script>${plotlyJsSource().replaceAll("</script", "<\\/script")}</script>`
    : `<script src="${opts.plotlySrc ?? new URL(import.meta.resolve("plotly.js-dist-min")).href}"></script>`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>${
    title.replace(/<[^>]+>/g, "").replace(/[<>&]/g, "")
  }</title>${head}</head><body style="margin:0">${figureHtmlFragment(fig)}</body></html>`;
}

/** Thrown by {@link exportFigure} when no headless Chromium can be found. */
export class ChromiumNotFoundError extends Error {
  override name = "ChromiumNotFoundError";
}

/** Chromium flags for a headless run on a machine with no network and no GPU (as root: `--no-sandbox`). */
export const CHROMIUM_FLAGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
  "--hide-scrollbars",
];

function isExecutable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * Finds a Chromium/Chrome binary: `explicit`, else `$MERBA_CHROMIUM`, else `chromium`, `chromium-browser`,
 * `google-chrome`, `google-chrome-stable` on `PATH`. Returns undefined when there is none.
 */
export function findChromium(explicit?: string): string | undefined {
  const env = explicit ?? Deno.env.get("MERBA_CHROMIUM");
  if (env) return isExecutable(env) ? env : undefined;
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter((d) => d);
  for (const name of ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]) {
    for (const dir of dirs) {
      const p = join(dir, name);
      if (isExecutable(p)) return p;
    }
  }
  return undefined;
}

/** Options of {@link exportFigure}. */
export interface ExportFigureOptions {
  /** `png` or `svg`; by default from the file extension. */
  format?: "png" | "svg";
  /** Image size in CSS pixels. @default layout.width ?? 700, layout.height ?? 450 */
  width?: number;
  height?: number;
  /** PNG pixel scale (2 = retina). @default 1 */
  scale?: number;
  /** Chromium binary; default {@link findChromium}. */
  chromium?: string;
  /** Give up after this long. @default 60000 */
  timeoutMs?: number;
}

/**
 * Writes a static PNG or SVG of the figure (for papers), rendering it with plotly.js in headless Chromium
 * (`Plotly.toImage`). Takes 1-2 s per figure.
 *
 * @returns the path written.
 * @throws {ChromiumNotFoundError} when no Chromium is installed (the message says how to install one).
 * @throws {RangeError} for an unknown format or a non-positive size.
 * @throws {Error} when Chromium fails or plotly.js reports an error (its message included).
 * @example
 * ```ts ignore
 * await exportFigure(confusionFigure(m.confusion, labels), "out/confusion.svg");
 * ```
 */
export async function exportFigure(
  fig: PlotlyFigure,
  path: string,
  opts: ExportFigureOptions = {},
): Promise<string> {
  validateFigure(fig, "exportFigure");
  const ext = path.toLowerCase().match(/\.(png|svg)$/)?.[1];
  const format = opts.format ?? ext;
  if (format !== "png" && format !== "svg") {
    throw new RangeError(
      `exportFigure: cannot tell the format of "${path}": use a .png or .svg name or pass format "png"|"svg"`,
    );
  }
  const width = opts.width ?? Number(fig.layout?.width ?? 700);
  const height = opts.height ?? Number(fig.layout?.height ?? 450);
  const scale = opts.scale ?? 1;
  for (const [k, v] of [["width", width], ["height", height], ["scale", scale]] as const) {
    if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`exportFigure: ${k} must be > 0, got ${v}`);
  }
  const chromium = findChromium(opts.chromium);
  if (!chromium) {
    throw new ChromiumNotFoundError(
      "exportFigure needs headless Chromium to run plotly.js, and none was found" +
        (opts.chromium ?? Deno.env.get("MERBA_CHROMIUM")
          ? ` at "${opts.chromium ?? Deno.env.get("MERBA_CHROMIUM")}"`
          : " on PATH (chromium, chromium-browser, google-chrome)") +
        ". Install it (Debian/Ubuntu: `sudo apt-get install chromium`) or set MERBA_CHROMIUM to its path." +
        " In a notebook the interactive figure still works; use the plotly toolbar's camera button instead.",
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "merba-export-" });
  try {
    const plain = toPlainFigure(fig);
    const layout = { ...(plain.layout ?? {}), width, height };
    const page = `<!doctype html><html><head><meta charset="utf-8">
<script src="${new URL(`file://${plotlyJsPath()}`).href}"></script></head><body>
<div id="fig"></div><script>
const out = (s) => { const p = document.createElement("pre"); p.id = "merba-out"; p.textContent = s;
  document.body.appendChild(p); };
const f = ${scriptSafe(JSON.stringify({ ...plain, layout }))};
try {
  Plotly.newPlot("fig", f.data, f.layout, { ...(f.config ?? {}), staticPlot: true })
    .then((gd) => Plotly.toImage(gd, { format: "${format}", width: ${width}, height: ${height}, scale: ${scale} }))
    .then((url) => out("OK:" + url), (e) => out("ERROR:" + e));
} catch (e) { out("ERROR:" + e); }
</script></body></html>`;
    const pagePath = join(dir, "figure.html");
    await Deno.writeTextFile(pagePath, page);
    const cmd = new Deno.Command(chromium, {
      args: [
        ...CHROMIUM_FLAGS,
        `--user-data-dir=${join(dir, "profile")}`,
        "--allow-file-access-from-files",
        "--virtual-time-budget=20000",
        "--dump-dom",
        `file://${pagePath}`,
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(opts.timeoutMs ?? 60000),
    });
    const res = await cmd.output();
    const dom = new TextDecoder().decode(res.stdout);
    const m = dom.match(/<pre id="merba-out">([^<]*)<\/pre>/);
    if (!m) {
      const err = new TextDecoder().decode(res.stderr).trim().split("\n").slice(-5).join("\n");
      throw new Error(`exportFigure: Chromium (${chromium}) exited ${res.code} without an image:\n${err}`);
    }
    const result = m[1].replaceAll("&quot;", '"').replaceAll("&lt;", "<").replaceAll("&gt;", ">")
      .replaceAll("&amp;", "&");
    if (!result.startsWith("OK:")) throw new Error(`exportFigure: plotly.js failed: ${result.slice(6)}`);
    const url = result.slice(3);
    const comma = url.indexOf(",");
    const meta = url.slice(0, comma);
    const payload = url.slice(comma + 1);
    const bytes = meta.endsWith(";base64")
      ? new Uint8Array(Buffer.from(payload, "base64"))
      : new TextEncoder().encode(decodeURIComponent(payload));
    await Deno.writeFile(path, bytes);
    return path;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
