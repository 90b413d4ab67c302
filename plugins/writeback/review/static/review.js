// Drag-and-drop reorder of contact cards. The order lives in the hidden `ref` inputs of each card
// (associated with the student's order form), so after a drop the form is simply submitted.
// Without JavaScript the arrow buttons do the same job.
(function () {
  "use strict";
  var dragged = null;
  var before = "";

  function refs(list) {
    return Array.prototype.map.call(list.querySelectorAll("li.contact"), function (li) {
      return li.getAttribute("data-ref");
    }).join(",");
  }

  document.querySelectorAll("ol.contacts").forEach(function (list) {
    list.addEventListener("dragstart", function (ev) {
      var li = ev.target.closest && ev.target.closest("li.contact[draggable='true']");
      if (!li) { return; }
      dragged = li;
      before = refs(list);
      li.classList.add("dragging");
      ev.dataTransfer.effectAllowed = "move";
      ev.dataTransfer.setData("text/plain", li.getAttribute("data-ref"));
    });
    list.addEventListener("dragover", function (ev) {
      if (!dragged || dragged.parentNode !== list) { return; }
      var over = ev.target.closest && ev.target.closest("li.contact");
      if (!over || over === dragged || over.classList.contains("expired")) { return; }
      ev.preventDefault();
      var box = over.getBoundingClientRect();
      var after = ev.clientY > box.top + box.height / 2;
      list.insertBefore(dragged, after ? over.nextSibling : over);
    });
    list.addEventListener("drop", function (ev) { ev.preventDefault(); });
    list.addEventListener("dragend", function () {
      if (!dragged) { return; }
      dragged.classList.remove("dragging");
      dragged = null;
      if (refs(list) !== before) {
        var form = document.getElementById(list.getAttribute("data-form"));
        if (form) { form.requestSubmit ? form.requestSubmit() : form.submit(); }
      }
    });
  });

  // Keep the place on the page after a decision: the server redirects to #s-<student>.
  var bulk = document.getElementById("bulk-form");
  if (bulk) {
    bulk.addEventListener("submit", function (ev) {
      var n = bulk.querySelector("button[type=submit]").textContent;
      if (!window.confirm(n + "?\nPossible matches, name and phone-type mismatches are left for you.")) {
        ev.preventDefault();
      }
    });
  }
})();
