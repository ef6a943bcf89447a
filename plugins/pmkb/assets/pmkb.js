/* pmkb: sort and filter postmortem tables in the browser. The tables are complete
   without this script; it only adds controls. Works with Material's instant loading. */
(function () {
  "use strict";
  var FILTERS = [["severity", "Severity"], ["services", "Service"], ["year", "Year"], ["status", "Status"]];

  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) return "";
    return cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent.trim();
  }

  function makeSortable(table) {
    var heads = table.querySelectorAll("thead th[data-sort]");
    Array.prototype.forEach.call(heads, function (th, index) {
      th.setAttribute("tabindex", "0");
      th.setAttribute("role", "button");
      function sort() {
        var numeric = th.getAttribute("data-sort") === "number";
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a, index), y = cellValue(b, index);
          var r;
          if (numeric) { r = (parseFloat(x) || 0) - (parseFloat(y) || 0); }
          else { r = x.localeCompare(y, undefined, { numeric: true }); }
          return asc ? r : -r;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
    });
  }

  function makeFilters(wrap) {
    var box = wrap.querySelector("[data-pmkb-filters]");
    var table = wrap.querySelector("table[data-pmkb-table]");
    if (!box || !table || box.getAttribute("data-ready")) return;
    box.setAttribute("data-ready", "1");
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var selects = {};
    FILTERS.forEach(function (f) {
      var values = {};
      rows.forEach(function (r) {
        (r.getAttribute("data-" + f[0]) || "").split("|").forEach(function (v) { if (v) values[v] = true; });
      });
      var keys = Object.keys(values).sort(function (a, b) { return f[0] === "year" ? b.localeCompare(a) : a.localeCompare(b); });
      if (keys.length < 2) return;
      var label = document.createElement("label");
      label.textContent = f[1] + " ";
      var select = document.createElement("select");
      select.setAttribute("data-pmkb-filter", f[0]);
      var all = document.createElement("option");
      all.value = ""; all.textContent = "All";
      select.appendChild(all);
      keys.forEach(function (k) { var o = document.createElement("option"); o.value = k; o.textContent = k; select.appendChild(o); });
      select.addEventListener("change", apply);
      label.appendChild(select);
      box.appendChild(label);
      selects[f[0]] = select;
    });
    var count = document.createElement("span");
    count.setAttribute("aria-live", "polite");
    count.className = "pmkb-muted";
    box.appendChild(count);
    function apply() {
      var shown = 0;
      rows.forEach(function (r) {
        var ok = Object.keys(selects).every(function (key) {
          var want = selects[key].value;
          return !want || (r.getAttribute("data-" + key) || "").split("|").indexOf(want) >= 0;
        });
        r.hidden = !ok;
        if (ok) shown += 1;
      });
      count.textContent = shown + " of " + rows.length + " shown";
    }
    apply();
    box.hidden = false;
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("table[data-pmkb-table]"), function (t) {
      if (!t.getAttribute("data-pmkb-sortable")) { t.setAttribute("data-pmkb-sortable", "1"); makeSortable(t); }
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-pmkb-table-wrap]"), makeFilters);
  }

  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(init);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
