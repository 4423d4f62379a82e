// Draws the server-built Plotly figures: each [data-chart] element names the json_script holding its
// figure. Text and grid colours come from the page's CSS variables, so charts follow the dark theme.
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function themed(layout) {
    var fg = cssVar("--fg", "#1a1a1a"), grid = cssVar("--grid", "#d0d5dd");
    var out = Object.assign({}, layout);
    out.font = Object.assign({}, layout.font || {}, { color: fg });
    ["xaxis", "yaxis"].forEach(function (axis) {
      out[axis] = Object.assign({ gridcolor: grid, zerolinecolor: grid, linecolor: grid, automargin: true }, layout[axis] || {});
    });
    out.hoverlabel = Object.assign({ bgcolor: cssVar("--bg", "#fff"), font: { color: fg } }, layout.hoverlabel || {});
    return out;
  }

  function draw(root) {
    if (!window.Plotly) return;
    (root || document).querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var source = document.getElementById(el.dataset.chart);
      if (!source) return;
      var figure = JSON.parse(source.textContent);
      el.dataset.drawn = "1";
      window.Plotly.newPlot(el, figure.data, themed(figure.layout || {}), { responsive: true, displayModeBar: false });
    });
  }

  function redrawAll() {
    document.querySelectorAll("[data-chart][data-drawn]").forEach(function (el) {
      var source = document.getElementById(el.dataset.chart);
      if (source && window.Plotly) window.Plotly.relayout(el, themed(JSON.parse(source.textContent).layout || {}));
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:load", function (event) { draw(event.target); });
  if (window.matchMedia) {
    var query = window.matchMedia("(prefers-color-scheme: dark)");
    if (query.addEventListener) query.addEventListener("change", redrawAll);
  }
})();
