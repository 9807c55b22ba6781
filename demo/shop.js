// The demo shop's own script: it gates its features on the visitor's
// consent, as a merchant's tags would.
(function () {
  "use strict";
  var purposes = ["newsletter", "recommendations", "birthday_reward", "partner_sharing", "wellness_tips"];
  function show() {
    var list = document.getElementById("allowed");
    if (!list || !window.Fineline) {
      return;
    }
    list.textContent = "";
    purposes.forEach(function (p) {
      var li = document.createElement("li");
      li.id = "allowed-" + p;
      li.textContent = p + ": " + (window.Fineline.allowed(p) ? "allowed" : "not allowed");
      list.appendChild(li);
    });
  }
  document.addEventListener("fineline:change", show);
  document.addEventListener("DOMContentLoaded", function () {
    show();
    var button = document.getElementById("privacy-choices");
    if (button) {
      button.addEventListener("click", function () {
        if (window.Fineline && window.Fineline.open) {
          window.Fineline.open();
        }
      });
    }
  });
})();
