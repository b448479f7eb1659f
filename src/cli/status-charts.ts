/**
 * The live charts of the status page, as plain SVG (no chart library: five
 * small line charts are a few dozen lines of DOM code, and the page stays
 * one request besides the bundle). The page feeds them the server's
 * StatusHistory samples; each chart keeps the last `WINDOW` samples.
 */

/** The charts' section of the page. */
export const CHARTS_HTML = `
<h2>Last minutes</h2>
<div class="charts">
  <figure><figcaption>Puts per second</figcaption><svg data-chart="puts" viewBox="0 0 300 90" preserveAspectRatio="none"></svg><div class="legend" data-legend="puts"></div></figure>
  <figure><figcaption>Links by kind and transport</figcaption><svg data-chart="links" viewBox="0 0 300 90" preserveAspectRatio="none"></svg><div class="legend" data-legend="links"></div></figure>
  <figure><figcaption>Refusals per second, by code</figcaption><svg data-chart="refusals" viewBox="0 0 300 90" preserveAspectRatio="none"></svg><div class="legend" data-legend="refusals"></div></figure>
  <figure><figcaption>Server sync: records per second, catch-ups running, backlog</figcaption><svg data-chart="sync" viewBox="0 0 300 90" preserveAspectRatio="none"></svg><div class="legend" data-legend="sync"></div></figure>
  <figure><figcaption>Event-loop delay, ms</figcaption><svg data-chart="loop" viewBox="0 0 300 90" preserveAspectRatio="none"></svg><div class="legend" data-legend="loop"></div></figure>
</div>`;

export const CHARTS_CSS = `
  .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(17rem, 1fr)); gap: 1rem; }
  figure { margin: 0; border: 1px solid #ddd; border-radius: 6px; padding: .5rem; }
  figcaption { font-size: .85rem; color: #444; margin-bottom: .3rem; }
  svg[data-chart] { width: 100%; height: 90px; background: #fafafa; }
  .legend { font-size: .8rem; color: #444; display: flex; flex-wrap: wrap; gap: .2rem .8rem; }
  .legend i { display: inline-block; width: .7rem; height: .7rem; margin-right: .25rem; vertical-align: -1px; }`;

/** Browser code (inside the page's module script): `chartSamples(samples)` adds samples and redraws. */
export const CHARTS_SCRIPT = `
const WINDOW = 150;
const COLORS = ["#0b6bcb", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#e67700", "#1098ad", "#5c7cfa"];
const chartData = { t: [], puts: {}, links: {}, refusals: {}, sync: {}, loop: {} };
window.statusCharts = chartData;

function push(chart, name, index, value) {
  const series = (chartData[chart][name] ??= new Array(index).fill(0));
  while (series.length < index) series.push(0);
  series.push(value);
}

function trim() {
  const drop = chartData.t.length - WINDOW;
  if (drop <= 0) return;
  chartData.t.splice(0, drop);
  for (const chart of ["puts", "links", "refusals", "sync", "loop"]) {
    for (const [name, series] of Object.entries(chartData[chart])) {
      series.splice(0, drop);
      if (series.every((v) => v === 0) && chart === "refusals") delete chartData[chart][name];
    }
  }
}

function draw(chart) {
  const svg = document.querySelector('svg[data-chart="' + chart + '"]');
  const legend = document.querySelector('[data-legend="' + chart + '"]');
  const entries = Object.entries(chartData[chart]);
  const n = chartData.t.length;
  const max = Math.max(1, ...entries.flatMap(([, s]) => s));
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  legend.replaceChildren();
  entries.forEach(([name, series], i) => {
    const color = COLORS[i % COLORS.length];
    const line = document.createElementNS(ns, "polyline");
    const points = series.map((v, x) => (n <= 1 ? 0 : (x / (n - 1)) * 300).toFixed(1) + "," + (88 - (v / max) * 84).toFixed(1));
    line.setAttribute("points", points.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", color);
    line.setAttribute("stroke-width", "1.5");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    line.dataset.series = name;
    svg.append(line);
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = color;
    const last = series[series.length - 1] ?? 0;
    item.append(swatch, name + " " + (Math.round(last * 10) / 10));
    legend.append(item);
  });
  const top = document.createElementNS(ns, "text");
  top.setAttribute("x", "2");
  top.setAttribute("y", "10");
  top.setAttribute("font-size", "9");
  top.setAttribute("fill", "#888");
  top.textContent = "max " + (Math.round(max * 10) / 10);
  svg.append(top);
  svg.dataset.points = String(n);
}

function chartSamples(samples) {
  for (const s of samples) {
    const i = chartData.t.length;
    chartData.t.push(s.t);
    push("puts", "in", i, s.putsIn);
    push("puts", "out", i, s.putsOut);
    for (const [name, v] of Object.entries(s.links)) push("links", name, i, v);
    for (const [name, v] of Object.entries(s.refusals)) push("refusals", name, i, v);
    push("sync", "fetched/s", i, s.syncFetched);
    push("sync", "pushed/s", i, s.syncPushed);
    push("sync", "running", i, s.syncRunning);
    push("sync", "backlog", i, s.syncBacklog);
    push("loop", "p50", i, s.loopP50);
    push("loop", "p99", i, s.loopP99);
    // Series that got no value this time (a link kind that went away) read 0 here.
    for (const chart of ["links", "refusals"]) for (const series of Object.values(chartData[chart])) while (series.length <= i) series.push(0);
  }
  trim();
  for (const chart of ["puts", "links", "refusals", "sync", "loop"]) draw(chart);
  return chartData.t[chartData.t.length - 1];
}
`;
