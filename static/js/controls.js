// Filter form niceties on top of a plain GET form (which works without this file):
// - the custom date range shows only for the "Custom range" window, and picking a date selects it;
// - htmx requests leave out empty and irrelevant fields, so the pushed URL holds just the real state;
// - no request goes out for a custom range until both dates are set;
// - after an htmx swap, a polite live region announces the new window and count;
// - the model list narrows to the models used through the chosen provider (options carry data-providers).
(function () {
  "use strict";

  function sync(form) {
    var period = form.querySelector("[name=period]");
    var range = form.querySelector("[data-custom-range]");
    if (!period || !range) return;
    range.hidden = period.value !== "custom";
  }

  // Runs on the provider select itself, so before the form's change handler (htmx) sends the request.
  function narrowModels(form) {
    var provider = form.querySelector("[name=provider]"), model = form.querySelector("[name=model]");
    if (!provider || !model) return;
    Array.prototype.forEach.call(model.options, function (option) {
      var providers = (option.dataset.providers || "").split(" ");
      option.hidden = Boolean(option.value && provider.value && providers.indexOf(provider.value) < 0);
    });
    if (model.selectedOptions[0] && model.selectedOptions[0].hidden) model.value = "";
  }

  function setup(root) {
    (root || document).querySelectorAll("form.controls").forEach(function (form) {
      if (form.dataset.ready) return;
      form.dataset.ready = "1";
      sync(form);
      var provider = form.querySelector("[name=provider]");
      if (provider) provider.addEventListener("change", function () { narrowModels(form); });
      form.addEventListener("change", function (event) {
        var period = form.querySelector("[name=period]");
        if (event.target.type === "date" && period && event.target.value) period.value = "custom";
        sync(form);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { setup(document); });
  document.addEventListener("htmx:load", function (event) { setup(event.target); });

  // After a table swap, tell screen readers what is shown now (one short line, not the whole table).
  document.addEventListener("htmx:afterSwap", function (event) {
    var status = document.getElementById("ranking-status");
    var label = event.detail.target && event.detail.target.querySelector(".window-label");
    if (status && label) status.textContent = label.textContent.replace(/\s+/g, " ").trim();
  });

  document.addEventListener("htmx:configRequest", function (event) {
    var form = event.detail.elt;
    if (!form || !form.classList || !form.classList.contains("controls")) return;
    var params = event.detail.parameters;
    var custom = params.get ? params.get("period") === "custom" : params.period === "custom";
    var start = form.querySelector("[name=start]"), end = form.querySelector("[name=end]");
    if (custom && (!start.value || !end.value)) {
      event.preventDefault(); // wait for the second date
      return;
    }
    var names = [];
    form.querySelectorAll("[name]").forEach(function (el) { names.push(el.name); });
    names.forEach(function (name) {
      var value = form.elements[name] && form.elements[name].value;
      var drop = !value || (!custom && (name === "start" || name === "end"));
      if (drop) {
        if (params.delete) params.delete(name); else delete params[name];
      }
    });
  });
})();
