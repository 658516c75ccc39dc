/* The experiment report's charts (templates/campaigns/admin/report.html), drawn with the vendored Chart.js from
   the data the page puts in <script type="application/json" id="visage-report-data">. No inline script and no
   handler attributes, so a strict Content-Security-Policy allows it. Colours come from the admin's CSS variables
   and follow its light and dark themes. Each chart has a table under it with the same numbers. */
(function () {
  "use strict";

  var PALETTE = ["#417690", "#e0803b", "#3f9b4f", "#9a5cb4", "#c9463d", "#1f9e9a", "#8a7f3a", "#6c7a89"];

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function withAlpha(hex, alpha) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + ((n >> 16) & 255) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  function percent(value) {
    return value === null || value === undefined ? "—" : (value * 100).toFixed(1) + "%";
  }

  function applyTheme() {
    Chart.defaults.color = cssVar("--body-quiet-color", "#666");
    Chart.defaults.borderColor = cssVar("--hairline-color", "#e8e8e8");
    Chart.defaults.font.family = cssVar("--font-family-primary", "sans-serif");
  }

  function percentAxis(max) {
    var axis = { beginAtZero: true, ticks: { callback: function (v) { return percent(v); } } };
    if (max !== undefined) axis.max = max;
    return axis;
  }

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) return null;
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options);
    return new Chart(canvas, config);
  }

  function cumulativeChart(data) {
    var datasets = [];
    data.arms.forEach(function (arm, index) {
      var series = data.series[arm.key];
      if (!series) return;
      var colour = PALETTE[index % PALETTE.length];
      // The interval as a band: the upper bound, then the lower one filled up to it ("-1").
      datasets.push({ label: arm.name + " upper", data: series.upper, borderWidth: 0, pointRadius: 0,
                      fill: false, band: true });
      datasets.push({ label: arm.name + " 95% interval", data: series.lower, borderWidth: 0, pointRadius: 0,
                      backgroundColor: withAlpha(colour, 0.14), fill: "-1", band: true });
      datasets.push({ label: arm.name, data: series.rate, borderColor: colour, backgroundColor: colour,
                      pointRadius: 2, tension: 0, fill: false });
    });
    return draw("chart-cumulative", {
      type: "line",
      data: { labels: data.days, datasets: datasets },
      options: {
        scales: { y: percentAxis() },
        plugins: {
          legend: { labels: { filter: function (item, chart) { return !chart.datasets[item.datasetIndex].band; } } },
          tooltip: { callbacks: { label: function (ctx) { return ctx.dataset.label + ": " + percent(ctx.parsed.y); } } },
        },
      },
    });
  }

  function visitorsChart(data) {
    var datasets = data.arms.filter(function (arm) { return data.series[arm.key]; }).map(function (arm, index) {
      return { label: arm.name, data: data.series[arm.key].visitors, backgroundColor: PALETTE[index % PALETTE.length] };
    });
    return draw("chart-visitors", {
      type: "bar",
      data: { labels: data.days, datasets: datasets },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
    });
  }

  function when(iso) {
    return iso ? iso.slice(0, 16).replace("T", " ") : "";
  }

  function weightsChart(data) {
    if (!data.allocations.length) return null;
    // One point per reweighting, and one more where the last weights end, so the last step has a length.
    var steps = data.allocations.concat([{ starts_at: data.weights_until, weights: data.allocations[data.allocations.length - 1].weights }]);
    var labels = steps.map(function (a) { return when(a.starts_at); });
    if (data.weights_until_now) labels[labels.length - 1] = "now";
    var datasets = data.arms.map(function (arm, index) {
      var colour = PALETTE[index % PALETTE.length];
      return { label: arm.name, stepped: "before", borderColor: colour, backgroundColor: colour, pointRadius: 2,
               data: steps.map(function (a) { return a.weights[arm.key] === undefined ? null : a.weights[arm.key]; }) };
    });
    return draw("chart-weights", {
      type: "line",
      data: { labels: labels, datasets: datasets },
      options: {
        scales: { y: percentAxis(1) },
        plugins: { tooltip: { callbacks: { label: function (ctx) { return ctx.dataset.label + ": " + percent(ctx.parsed.y); } } } },
      },
    });
  }

  function reactionsChart(data) {
    var datasets = data.arms.map(function (arm, index) {
      var cells = data.reactions.map(function (metric) {
        return metric.arms.filter(function (cell) { return cell.key === arm.key; })[0] || { value: null, n: 0 };
      });
      return { label: arm.name, backgroundColor: PALETTE[index % PALETTE.length], counts: cells.map(function (c) { return c.n; }),
               data: cells.map(function (c) { return c.value; }) };
    });
    return draw("chart-reactions", {
      type: "bar",
      data: { labels: data.reactions.map(function (m) { return m.label; }), datasets: datasets },
      options: {
        scales: { y: percentAxis() },
        plugins: { tooltip: { callbacks: { label: function (ctx) {
          return ctx.dataset.label + ": " + percent(ctx.parsed.y) + " (n = " + ctx.dataset.counts[ctx.dataIndex] + ")";
        } } } },
      },
    });
  }

  function funnelChart(data) {
    var colours = [cssVar("--secondary", "#417690"), "#3f9b4f", "#c9463d", "#8a7f3a"];
    return draw("chart-funnel", {
      type: "bar",
      data: {
        labels: data.funnel.map(function (s) { return s.stage; }),
        datasets: [{ label: "Visitors", data: data.funnel.map(function (s) { return s.count; }), backgroundColor: colours }],
      },
      options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
  }

  function start() {
    var source = document.getElementById("visage-report-data");
    if (!source || typeof Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    var charts = [];
    function drawAll() {
      charts.forEach(function (chart) { chart.destroy(); });
      applyTheme();
      charts = [cumulativeChart(data), visitorsChart(data), weightsChart(data), reactionsChart(data), funnelChart(data)]
        .filter(Boolean);
    }
    drawAll();
    // The admin's theme toggle sets data-theme on <html>, and "auto" follows the system: draw again in the new
    // colours (a chart keeps the colours it was built with).
    new MutationObserver(drawAll).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    if (window.matchMedia) window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", drawAll);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
