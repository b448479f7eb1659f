/**
 * The status page of `tooldb-dht serve --web`: plain HTML and a module
 * script that runs the browser bundle itself. It links to this server only,
 * asks it for its status (the `status` server function) every 2 s, draws
 * the server's last minutes as live charts (status-charts.ts), and has a
 * live key: type a value, see it arrive in every other open tab.
 */
import { createHash } from "node:crypto";
import { CHARTS_CSS, CHARTS_HTML, CHARTS_SCRIPT } from "./status-charts.js";

export const LIVE_KEY = "status-page-live";

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page's one style sheet, inline (its hash is in STATUS_PAGE_CSP). */
const STYLE = `
  body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 58rem; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; }
  h2 { font-size: 1.1rem; margin-top: 1.6rem; }
  code { font-size: .9em; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }
  .state-linked, .ok { color: #1a7f37; }
  .state-failed, .state-waiting, .bad { color: #b42318; }
  .muted { color: #666; }
  input { font: inherit; padding: .3rem; width: 20rem; }
  button { font: inherit; padding: .3rem .8rem; }${CHARTS_CSS}
`;

/** The page's one script, inline (its hash is in STATUS_PAGE_CSP): it imports the browser bundle, served beside the page. */
const SCRIPT = `
import { ToolDb } from "./tooldb-dht.js";

const $ = (id) => document.getElementById(id);
const topic = document.querySelector('meta[name="tooldb-topic"]').content;
const secure = location.protocol === "https:";
const port = Number(location.port || (secure ? 443 : 80));
$("topic").textContent = topic;

const db = new ToolDb({ topic, ssl: secure, peers: [{ host: location.hostname, port }], serverSelection: false, storageName: "tooldb-status-page" });
window.statusDb = db;

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

${CHARTS_SCRIPT}
let newestSample;

function showStatus(status) {
  $("self-address").textContent = status.self.address;
  $("self-url").textContent = status.self.url ?? "(none: bound to an unspecified address; set --public-url)";
  $("clients").textContent = String(status.clients);
  const body = $("servers").tBodies[0];
  body.replaceChildren();
  if (status.servers.length === 0) {
    const tr = document.createElement("tr");
    tr.append(cell("none yet", "muted"), cell(""), cell(""), cell(""));
    body.append(tr);
  }
  for (const s of status.servers) {
    const tr = document.createElement("tr");
    tr.append(cell(s.id.length > 24 ? s.id.slice(0, 10) + "…" + s.id.slice(-10) : s.id), cell(s.url ?? ""), cell(s.sources.join(", ")), cell(s.state, "state-" + s.state));
    body.append(tr);
  }
  if (status.foundNotListed > 0) {
    const tr = document.createElement("tr");
    tr.append(cell("… and " + status.foundNotListed + " more addresses found on the DHT, never dialed", "muted"), cell(""), cell(""), cell(""));
    body.append(tr);
  }
  document.body.dataset.status = "shown";
}

async function poll() {
  if (db.network.peers.length > 0) {
    const reply = await db.doFunction("status", { since: newestSample }, 3000);
    if (reply.code === "OK") {
      showStatus(reply.return);
      newestSample = chartSamples(reply.return.history) ?? newestSample;
    }
  }
}

function showLink() {
  const up = db.network.peers.length > 0;
  $("link").textContent = up ? "linked (verified handshake)" : "not linked: reconnecting…";
  $("link").className = up ? "ok" : "bad";
}

function showLive(value) {
  $("live-value").textContent = typeof value === "string" ? value : JSON.stringify(value);
  $("live-value").className = "";
}

db.on("connect", () => { showLink(); void poll(); });
db.on("disconnect", showLink);
db.addKeyListener("${LIVE_KEY}", (record) => showLive(record.v));
$("live-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("live-input").value;
  // Key listeners hear other nodes' writes only: this tab shows its own at once.
  if (value) void db.putData("${LIVE_KEY}", value).then(() => {
    showLive(value);
    $("live-input").value = "";
  });
});

await db.ready;
await db.subscribeData("${LIVE_KEY}");
const current = await db.getData("${LIVE_KEY}");
if (current !== null) showLive(current);
showLink();
setInterval(() => void poll().catch(() => undefined), 2000);
`;

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;

/**
 * The Content-Security-Policy the page is served with: its inline style and
 * script by hash (no 'unsafe-inline'), scripts otherwise only from this
 * origin (the bundle), links (WebSocket) only to this origin, nothing else
 * loaded, no framing, no form posts, no <base>.
 */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src 'self' ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export function statusPage(topic: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="tooldb-topic" content="${escapeHtml(topic)}">
<title>tooldb-dht server</title>
<style>${STYLE}</style>
</head>
<body>
<h1>tooldb-dht server</h1>
<p class="muted">Topic <code id="topic"></code> · this page is a ToolDb client in your browser, linked to this server.</p>

<h2>This server</h2>
<table>
  <tr><th>Address</th><td><code id="self-address">…</code></td></tr>
  <tr><th>URL for browsers</th><td><code id="self-url">…</code></td></tr>
  <tr><th>Connected clients</th><td id="clients">…</td></tr>
  <tr><th>This page</th><td id="link" class="bad">connecting…</td></tr>
</table>

${CHARTS_HTML}

<h2>Servers it knows</h2>
<table id="servers">
  <thead><tr><th>Server</th><th>URL</th><th>Learned from</th><th>Link</th></tr></thead>
  <tbody><tr><td colspan="4" class="muted">…</td></tr></tbody>
</table>

<h2>Live key</h2>
<p class="muted">Type a value: it is signed here, sent through the mesh and shows up in every tab that has this page open.</p>
<form id="live-form"><input id="live-input" placeholder="a value" autocomplete="off"> <button>Put</button></form>
<p>Current value of <code>${LIVE_KEY}</code>: <strong id="live-value" class="muted">(none yet)</strong></p>

<script type="module">${SCRIPT}</script>
</body>
</html>
`;
}
