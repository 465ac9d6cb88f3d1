// The dashboard's page and style sheet, as strings: the build (tsc) only emits
// .js, and the package ships dist/src, so they travel with the code. Read by the
// control plane (src/control/http/dashboard.ts), never loaded by the browser.

/** The browser modules served as /ui/{name}.js (compiled from src/dashboard/{name}.ts). */
export const BROWSER_MODULES = ['app', 'api', 'charts', 'dom', 'graph', 'model', 'tap', 'telemetry-model', 'yaml'] as const;

export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Weft dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="style.css">
<link rel="stylesheet" href="vendor/uplot.min.css">
<!-- cytoscape adds an inline <style> unless an element with this id exists; the CSP
     forbids inline styles, so its one rule lives in style.css and this names it. -->
<link rel="stylesheet" id="__________cytoscape_stylesheet" href="style.css">
<script defer src="vendor/cytoscape.min.js"></script>
<script defer src="vendor/uplot.min.js"></script>
<script type="module" src="app.js"></script>
</head>
<body>
<header class="top">
  <div class="brand"><span class="logo">◆</span> Weft</div>
  <nav id="nav">
    <a href="#/overview" data-view="overview">Overview</a>
    <a href="#/graph" data-view="graph">Graph</a>
    <a href="#/services" data-view="services">Services</a>
    <a href="#/proxies" data-view="proxies">Proxies</a>
    <a href="#/certificates" data-view="certificates">Certificates</a>
    <a href="#/tap" data-view="tap">Tap</a>
    <a href="#/objects" data-view="objects">Objects</a>
  </nav>
  <div class="status"><span id="live" class="badge muted" title="watch stream">connecting…</span><span id="version" class="muted"></span></div>
</header>
<div id="banner" class="banner" hidden></div>
<main id="main" tabindex="-1"><p class="muted">Loading…</p></main>
<noscript>The Weft dashboard needs JavaScript.</noscript>
</body>
</html>
`;

export const STYLE_CSS = `:root {
  --bg: #f6f7f9; --panel: #fff; --ink: #1d2330; --muted: #6b7385; --line: #e3e6ec;
  --accent: #3b5bdb; --ok: #2b8a3e; --ok-bg: #e6f4ea; --warn: #b35c00; --warn-bg: #fff4e0;
  --bad: #c92a2a; --bad-bg: #fdecec; --chip: #eef1f6; --kind-bg: #e8ecfb; --kind: #34449a; --pre: #fbfbfd;
  --idle: #adb5c7;
  color-scheme: light dark;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #10141c; --panel: #171c27; --ink: #e6e9f0; --muted: #8d96a8; --line: #2a3142;
    --accent: #7c9cff; --ok: #69db7c; --ok-bg: #1b3323; --warn: #ffa94d; --warn-bg: #3a2a12;
    --bad: #ff8787; --bad-bg: #3d1b1e; --chip: #232a38; --kind-bg: #232d4d; --kind: #aebfff; --pre: #131823;
    --idle: #5c6680;
  }
}
/* cytoscape's one rule (see the link with its id in index.html). */
.__________cytoscape_container { position: relative; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
.muted { color: var(--muted); }
.top { display: flex; align-items: center; gap: 24px; padding: 0 20px; height: 52px; background: #1d2330; color: #fff; position: sticky; top: 0; z-index: 2; }
.brand { font-weight: 700; font-size: 17px; letter-spacing: .3px; }
.logo { color: #7c9cff; }
nav { display: flex; gap: 4px; }
nav a { color: #c9d1e4; padding: 6px 12px; border-radius: 6px; }
nav a:hover { background: #2c3445; text-decoration: none; }
nav a.active { background: #3b4560; color: #fff; }
.status { margin-left: auto; display: flex; gap: 12px; align-items: center; }
.status .muted { color: #9aa3b5; }
.banner { background: var(--warn-bg); color: var(--warn); padding: 8px 20px; border-bottom: 1px solid #f1d3a6; }
.banner form { display: inline-flex; gap: 6px; margin-left: 12px; }
main { padding: 20px; max-width: 1400px; margin: 0 auto; }
h2 { font-size: 18px; margin: 4px 0 14px; }
.panel > h3:first-child { margin-top: 0; }
h3 { font-size: 13px; text-transform: uppercase; letter-spacing: .6px; color: var(--muted); margin: 14px 0 6px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 12px; margin-bottom: 20px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
.stat .n { font-size: 26px; font-weight: 650; }
.stat .l { color: var(--muted); font-size: 12.5px; }
.stat .n.long { font-size: 18px; line-height: 39px; overflow-wrap: anywhere; }
.stat.bad .n { color: var(--bad); }
.stat.ok .n { color: var(--ok); }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin-bottom: 16px; }
.panel-head { display: flex; align-items: baseline; gap: 10px; flex-wrap: wrap; }
.panel-head .name { font-size: 16px; font-weight: 650; }
.cols { display: grid; grid-template-columns: minmax(320px, 1.2fr) minmax(340px, 1.5fr) minmax(240px, 1fr); gap: 20px; }
@media (max-width: 1000px) { .cols { grid-template-columns: 1fr; } }
.cols > div, .cols2 > div { min-width: 0; overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .4px; }
tr:last-child td { border-bottom: none; }
.chip { display: inline-block; background: var(--chip); border-radius: 10px; padding: 1px 8px; margin: 0 4px 2px 0; font-size: 12px; }
.badge { display: inline-block; border-radius: 4px; padding: 1px 7px; font-size: 11.5px; font-weight: 600; letter-spacing: .3px; background: var(--chip); color: var(--muted); }
.badge.ok { background: var(--ok-bg); color: var(--ok); }
.badge.warn { background: var(--warn-bg); color: var(--warn); }
.badge.bad { background: var(--bad-bg); color: var(--bad); }
.badge.kind { background: var(--kind-bg); color: var(--kind); }
.top .badge.ok { background: #1f4d2b; color: #b7f0c4; }
.top .badge.warn { background: #5a3a08; color: #ffd8a0; }
.top .badge.bad { background: #5c1d1d; color: #ffc2c2; }
.route { border-left: 3px solid #c5cff5; padding: 2px 0 6px 10px; margin-bottom: 10px; }
.rule { margin: 6px 0 0; }
.rule .match { color: var(--muted); font-size: 12.5px; }
.backend { display: grid; grid-template-columns: minmax(90px, 170px) 1fr 90px; gap: 8px; align-items: center; margin: 3px 0; font-size: 13px; }
.bar { background: var(--chip); height: 8px; border-radius: 4px; overflow: hidden; }
.bar > span { display: block; height: 100%; background: var(--accent); }
.weight { text-align: right; font-variant-numeric: tabular-nums; color: var(--muted); }
tr.nack td { background: var(--bad-bg); }
.nackmsg { color: var(--bad); font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; white-space: pre-wrap; word-break: break-word; }
.empty { color: var(--muted); font-style: italic; }
.metrics-note { border: 1px dashed var(--line); border-radius: 6px; padding: 10px 12px; color: var(--muted); }
.objects { display: grid; grid-template-columns: 300px 1fr; gap: 16px; align-items: start; }
.objlist { max-height: calc(100vh - 140px); overflow: auto; }
.objlist .group { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .5px; margin: 10px 0 4px; }
.objlist a { display: block; padding: 3px 8px; border-radius: 4px; color: var(--ink); }
.objlist a.sel { background: var(--kind-bg); color: var(--kind); }
.toolbar { display: flex; gap: 6px; align-items: center; margin-bottom: 8px; }
button, input, select { font: inherit; color: var(--ink); border: 1px solid var(--line); background: var(--panel); border-radius: 5px; padding: 3px 10px; }
button { cursor: pointer; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
nav a:focus-visible { outline-color: #7c9cff; }
button.on { background: var(--accent); border-color: var(--accent); color: #fff; }
pre.obj { margin: 0; padding: 12px; background: var(--pre); border: 1px solid var(--line); border-radius: 6px; overflow: auto; max-height: calc(100vh - 200px); }
.right { text-align: right; }
table.endpoints td { white-space: nowrap; }
.small { font-size: 12px; }
.ver { font-size: 10.5px; margin-top: 2px; }
.tone-ok { color: var(--ok); } .tone-warn { color: var(--warn); } .tone-bad { color: var(--bad); } .tone-idle { color: var(--muted); }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; vertical-align: middle; background: var(--idle); }
.dot.tone-ok { background: #2f9e44; } .dot.tone-warn { background: #e8590c; } .dot.tone-bad { background: #e03131; }
.graphpanel { padding: 8px; }
.graph { height: 460px; width: 100%; }
.legend { font-size: 12px; padding: 2px 6px 6px; }
.cols2 { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
@media (max-width: 1000px) { .cols2 { grid-template-columns: 1fr; } }
tr.unknown td { font-style: italic; }
.crumbs { margin: 2px 0 12px; font-size: 15px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.chart { min-width: 380px; min-height: 200px; }
.uplot, .u-title { color: var(--ink); font-family: inherit; }
.u-title { font-size: 13px; font-weight: 600; }
.u-legend { color: var(--muted); font-size: 12px; }
.tapform { flex-wrap: wrap; gap: 10px; }
.tapform label { display: inline-flex; gap: 6px; align-items: center; color: var(--muted); }
.tapwrap { max-height: calc(100vh - 260px); overflow: auto; }
table.tap td { white-space: nowrap; font-size: 12.5px; }
/* A padlock as a data: SVG (img-src allows data:), tinted like the badge's text. */
.lock::before { content: ""; display: inline-block; width: 9px; height: 11px; margin-right: 4px; vertical-align: -1px; background: url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 9 11'%3E%3Cpath d='M2 5V3.5a2.5 2.5 0 0 1 5 0V5' fill='none' stroke='%232b8a3e' stroke-width='1.4'/%3E%3Crect x='0.5' y='5' width='8' height='6' rx='1' fill='%232b8a3e'/%3E%3C/svg%3E") no-repeat center / contain; }
.effective { margin-bottom: 10px; }
.effective table td:first-child { width: 150px; }
tr.unset td { color: var(--muted); }
tr.expiry-soon td { background: var(--warn-bg); }
tr.expiry-expired td { background: var(--bad-bg); }
`;
