// Upload page: drag and drop, a client-side size check naming the file, and a real upload progress bar
// (XMLHttpRequest upload.onprogress). Without this script the form posts normally and works the same.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  var input = form.querySelector('input[type="file"]');
  var zone = document.getElementById("drop-zone");
  var chosen = document.getElementById("chosen-files");
  var errors = document.getElementById("upload-errors");
  var status = document.getElementById("upload-status");
  var bar = document.getElementById("upload-progress");
  var text = document.getElementById("upload-progress-text");
  var submit = document.getElementById("upload-submit");
  var maxBytes = parseInt(form.dataset.maxBytes, 10) || 0;

  function size(bytes) {
    var units = ["bytes", "KB", "MB", "GB"], i = 0;
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i++; }
    return (i ? bytes.toFixed(1) : bytes) + " " + units[i];
  }

  function showErrors(list) {
    errors.textContent = "";
    list.forEach(function (message) {
      var li = document.createElement("li");
      li.textContent = message;
      errors.appendChild(li);
    });
    errors.hidden = list.length === 0;
  }

  function tooLarge(files) {
    var problems = [];
    Array.prototype.forEach.call(files, function (file) {
      if (maxBytes && file.size > maxBytes) {
        problems.push(file.name + ": the file is larger than the upload limit (" + size(file.size) + "; the limit is " + size(maxBytes) + ")");
      } else if (file.size === 0) {
        problems.push(file.name + ": the file is empty");
      }
    });
    return problems;
  }

  function listFiles() {
    chosen.textContent = "";
    Array.prototype.forEach.call(input.files, function (file) {
      var li = document.createElement("li");
      li.textContent = file.name + " (" + size(file.size) + ")";
      chosen.appendChild(li);
    });
    showErrors(tooLarge(input.files));
  }

  input.addEventListener("change", listFiles);
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("dragging"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.remove("dragging"); });
  });
  zone.addEventListener("drop", function (event) {
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      listFiles();
    }
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!input.files.length) { showErrors(["Choose or drop at least one export file."]); return; }
    var problems = tooLarge(input.files);
    if (problems.length) { showErrors(problems); return; }
    showErrors([]);
    var request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("Accept", "application/json");
    request.responseType = "json";
    request.upload.onprogress = function (progress) {
      if (progress.lengthComputable) {
        bar.max = progress.total;
        bar.value = progress.loaded;
        text.textContent = "Uploading… " + size(progress.loaded) + " of " + size(progress.total) +
          " (" + Math.floor(100 * progress.loaded / progress.total) + "%)";
      }
    };
    request.upload.onload = function () { text.textContent = "Uploaded; storing the files…"; };
    request.onload = function () {
      var body = request.response || {};
      if (request.status === 200 && body.redirect) { window.location.assign(body.redirect); return; }
      submit.disabled = false;
      status.hidden = true;
      showErrors(body.errors || ["The upload failed (HTTP " + request.status + "). Try again."]);
    };
    request.onerror = function () {
      submit.disabled = false;
      status.hidden = true;
      showErrors(["The upload was interrupted (network error). Nothing was imported; try again."]);
    };
    submit.disabled = true;
    status.hidden = false;
    bar.removeAttribute("value");
    text.textContent = "Starting the upload…";
    request.send(new FormData(form));
  });
})();
