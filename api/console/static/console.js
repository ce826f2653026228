// The console's only script: sortable tables, and live progress on a run's page.
"use strict";

function cellValue(row, index, numeric) {
  var cell = row.cells[index];
  if (!cell) return numeric ? 0 : "";
  var raw = cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent.trim();
  // Amounts sort by their integer minor units (data-value), never by parsed text.
  return numeric ? Number(raw) || 0 : raw.toLowerCase();
}

function sortBy(table, header) {
  var index = Array.prototype.indexOf.call(header.parentNode.children, header);
  var numeric = header.getAttribute("data-type") === "number";
  var ascending = header.getAttribute("aria-sort") !== "ascending";
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return !r.querySelector("td.empty"); });
  rows.sort(function (a, b) {
    var x = cellValue(a, index, numeric), y = cellValue(b, index, numeric);
    return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
  });
  Array.prototype.forEach.call(header.parentNode.children, function (th) { th.removeAttribute("aria-sort"); });
  header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  rows.forEach(function (r) { body.appendChild(r); });
}

function makeSortable(table) {
  if (!table.tHead) return;
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    th.addEventListener("click", function () { sortBy(table, th); });
  });
}

var FINISHED = ["completed", "completed_with_failures", "cancelled"];

function showProgress(data) {
  document.getElementById("run-status").textContent = data.status;
  document.getElementById("run-status").className = "status " + data.status;
  document.getElementById("progress-done").textContent = data.progress.done;
  document.getElementById("progress-items").textContent = data.progress.items;
  document.getElementById("progress-failed").textContent = data.progress.failed;
  var bar = document.getElementById("progress-bar");
  bar.max = data.progress.items || 1;
  bar.value = data.progress.done;
  data.batches.forEach(function (b) {
    var row = document.querySelector('tr[data-batch="' + b.id + '"]');
    if (!row) return;
    row.querySelector("[data-batch-status]").textContent = b.status;
    row.querySelector("[data-batch-counts]").textContent = Object.keys(b.counts)
      .map(function (k) { return k + " " + b.counts[k]; }).join(", ");
  });
}

function followProgress(section) {
  var url = section.getAttribute("data-progress-url");
  function tick() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (data) {
        showProgress(data);
        // Finished: reload once for the outcomes, failures and payout files.
        if (FINISHED.indexOf(data.status) >= 0) { window.location.reload(); return; }
        window.setTimeout(tick, 1500);
      })
      .catch(function () { window.setTimeout(tick, 5000); });
  }
  tick();
}

document.addEventListener("DOMContentLoaded", function () {
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), makeSortable);
  var section = document.querySelector("[data-progress-url]");
  if (section) followProgress(section);
});
