// The request pages. Nothing here is needed for a form to work: "tick all" in the import
// report, and the letter form hiding the agency's fields while a village is chosen.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var all = document.getElementById("pick-all");
    if (all) {
      all.addEventListener("change", function () {
        document.querySelectorAll("#report input[name=row]").forEach(function (box) {
          box.checked = all.checked;
        });
      });
    }
    var form = document.getElementById("request-form");
    if (form) {
      var kinds = form.querySelectorAll("input[name=applicant_kind]");
      var show = function () {
        var chosen = form.querySelector("input[name=applicant_kind]:checked");
        form.classList.toggle("village", !!chosen && chosen.value === "village");
      };
      kinds.forEach(function (radio) { radio.addEventListener("change", show); });
      show();
    }
  });
})();
