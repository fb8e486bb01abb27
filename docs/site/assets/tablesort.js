// Sort the tables inside <div class="sortable"> by a click on a column header.
// Numbers sort as numbers ("≥ 0.99", "1e-04"), everything else as text; a second click reverses.
(function () {
  "use strict";
  var NUMBER = /-?\d+(?:\.\d+)?(?:e[-+]?\d+)?/i;

  function key(cell) {
    var text = cell.textContent.trim();
    var match = text.match(NUMBER);
    if (match && text.replace(match[0], "").replace(/[\s≥≤<>=%]/g, "") === "") {
      return { num: parseFloat(match[0]), text: text };
    }
    return { num: null, text: text.toLowerCase() };
  }

  function compare(a, b) {
    if (a.num !== null && b.num !== null) return a.num - b.num;
    if (a.num !== null) return -1;
    if (b.num !== null) return 1;
    return a.text < b.text ? -1 : a.text > b.text ? 1 : 0;
  }

  function sortBy(table, column, header) {
    var body = table.tBodies[0];
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var rows = Array.prototype.slice.call(body.rows).map(function (row, index) {
      return { row: row, key: key(row.cells[column]), index: index };
    });
    rows.sort(function (a, b) {
      var order = compare(a.key, b.key) || a.index - b.index;
      return ascending ? order : -order;
    });
    rows.forEach(function (item) { body.appendChild(item.row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  function setUp() {
    document.querySelectorAll(".sortable table").forEach(function (table) {
      if (!table.tHead || table.dataset.sortable) return;
      table.dataset.sortable = "yes";
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
        header.setAttribute("title", "Sort by this column");
        header.addEventListener("click", function () { sortBy(table, column, header); });
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
