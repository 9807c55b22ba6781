// Progressive enhancement for the preference center: everything works
// without this file. It counts unsaved changes and moves focus to the
// confirmation after a save.
(function () {
  "use strict";
  var form = document.getElementById("prefs");
  if (form) {
    var counter = document.getElementById("unsaved");
    var update = function () {
      var changed = 0;
      form.querySelectorAll("input[type=checkbox][data-initial]").forEach(function (box) {
        if ((box.checked ? "on" : "off") !== box.getAttribute("data-initial")) {
          changed++;
        }
      });
      if (changed === 0) {
        counter.hidden = true;
        counter.textContent = "";
      } else {
        counter.hidden = false;
        counter.textContent = changed === 1 ? form.getAttribute("data-unsaved-one") : form.getAttribute("data-unsaved-other").replace("#", String(changed));
      }
    };
    form.addEventListener("change", update);
  }
  var saved = document.getElementById("saved");
  if (saved) {
    saved.setAttribute("tabindex", "-1");
    saved.focus();
  }
})();
