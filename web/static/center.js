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
  // A volunteered field can be filled only while a purpose that needs it
  // is on: its inputs follow the switches (the server enforces the same).
  var fieldsFollow = function () {
    document.querySelectorAll("#prefs .field[data-needs]").forEach(function (field) {
      var on = field.getAttribute("data-needs").split(" ").some(function (key) {
        var box = document.getElementById("p-" + key);
        return box && box.checked;
      });
      field.querySelectorAll("input, select").forEach(function (input) {
        input.disabled = !on;
      });
    });
  };
  if (form) {
    form.addEventListener("change", fieldsFollow);
    fieldsFollow();
  }
  // Offers place a birthday in the shopper's own time zone.
  document.querySelectorAll("input.tz").forEach(function (input) {
    try {
      input.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) {
      input.value = "";
    }
  });
  var saved = document.getElementById("saved");
  if (saved) {
    saved.setAttribute("tabindex", "-1");
    saved.focus();
  }
})();
