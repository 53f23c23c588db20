// gun's dashboard: the one script. Pages read without it; with it, the processes table
// follows the platform every second, the metrics charts every data-live-every seconds, and
// buttons marked data-confirm ask first.
(function () {
  "use strict";

  // Ask before a form whose button has data-confirm is sent; confirmed, the server acts at
  // once (without this script it shows a confirmation page instead).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter || form.querySelector("button[data-confirm]");
    if (!button || !button.hasAttribute("data-confirm")) return;
    if (!window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
      return;
    }
    var confirmed = document.createElement("input");
    confirmed.type = "hidden";
    confirmed.name = "confirmed";
    confirmed.value = "yes";
    form.appendChild(confirmed);
  });

  // Replace a live section's table rows (or, without a table, its whole content) with the
  // server's, every second or every data-live-every seconds.
  function follow(section) {
    var table = section.querySelector("table");
    var url = section.getAttribute("data-live");
    var every = (Number(section.getAttribute("data-live-every")) || 1) * 1000;
    var busy = false;
    setInterval(function () {
      if (busy || document.hidden) return;
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) {
          if (!r.ok || r.redirected) throw new Error(url + ": " + r.status);
          return r.text();
        })
        .then(function (html) {
          var fresh = document.createElement("template");
          fresh.innerHTML = html;
          if (!table) {
            section.replaceChildren(fresh.content);
            return;
          }
          table.querySelectorAll("tbody").forEach(function (b) { b.remove(); });
          table.appendChild(fresh.content);
        })
        .catch(function () { /* the next tick tries again */ })
        .then(function () { busy = false; });
    }, every);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("section[data-live]").forEach(follow);
  });
})();
