/* The segment change page's size-over-time chart (templates/segments/admin/segment_change_form.html), drawn with
   the vendored Chart.js from <script type="application/json" id="visage-segment-data">: the size after each run.
   No inline script, so a strict Content-Security-Policy allows it; colours follow the admin's light and dark
   themes. The same numbers are in the table under the chart. */
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function when(iso) {
    return iso ? iso.slice(0, 16).replace("T", " ") : "";
  }

  function sizeChart(data) {
    var canvas = document.getElementById("chart-segment-size");
    if (!canvas) return null;
    Chart.defaults.color = cssVar("--body-quiet-color", "#666");
    Chart.defaults.borderColor = cssVar("--hairline-color", "#e8e8e8");
    Chart.defaults.font.family = cssVar("--font-family-primary", "sans-serif");
    var colour = cssVar("--secondary", "#417690");
    return new Chart(canvas, {
      type: "line",
      data: {
        labels: data.labels.map(when),
        datasets: [{ label: "Members", data: data.sizes, borderColor: colour, backgroundColor: colour,
                     pointRadius: data.sizes.length > 60 ? 0 : 2, stepped: "before", fill: false }],
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } }, x: { ticks: { maxTicksLimit: 8 } } },
      },
    });
  }

  function start() {
    var source = document.getElementById("visage-segment-data");
    if (!source || typeof Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    var chart = null;
    function draw() {
      if (chart) chart.destroy();
      chart = sizeChart(data);
    }
    draw();
    // The admin's theme toggle sets data-theme on <html>; a chart keeps the colours it was built with.
    new MutationObserver(draw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    if (window.matchMedia) window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", draw);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
