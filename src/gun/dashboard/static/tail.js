// gun's dashboard: the logs page's live tail. The page lists the newest lines without it;
// with it, an EventSource on the list's data-stream (the session's cookie, no token) appends
// each new line, keeps the last KEEP, follows the bottom unless scrolled up, and pauses.
(function () {
  "use strict";
  var KEEP = 1000;

  // A row as the server renders it: time, origin (app[web.1]), message; text only.
  function row(text, id) {
    var li = document.createElement("li");
    li.setAttribute("data-id", id);
    var rest = text.slice(33);
    var cut = rest.indexOf(": ");
    var msg = document.createElement("span");
    msg.className = "msg";
    if (text.length > 33 && text.charAt(32) === " " && cut > 0 && rest.charAt(cut - 1) === "]") {
      var time = document.createElement("time");
      time.setAttribute("datetime", text.slice(0, 32));
      time.textContent = text.slice(0, 10) + " " + text.slice(11, 26);
      var origin = document.createElement("b");
      origin.className = "origin";
      origin.textContent = rest.slice(0, cut);
      li.append(time, " ", origin, " ");
      msg.textContent = rest.slice(cut + 2);
    } else {
      msg.textContent = text;
    }
    li.appendChild(msg);
    return li;
  }

  function follow(list) {
    var box = list.parentElement;
    var state = document.getElementById("tail-state");
    var pause = document.getElementById("tail-pause");
    var empty = document.getElementById("no-lines");
    var held = [];
    var paused = false;

    function say(text) { if (state) state.textContent = text; }
    function atBottom() { return box.scrollHeight - box.scrollTop - box.clientHeight < 30; }
    function add(items) {
      if (!items.length) return;
      var stick = atBottom();
      if (empty) { empty.remove(); empty = null; }
      items.forEach(function (li) { list.appendChild(li); });
      while (list.children.length > KEEP) list.removeChild(list.firstElementChild);
      if (stick) box.scrollTop = box.scrollHeight;
    }

    box.scrollTop = box.scrollHeight;
    var source = new EventSource(list.getAttribute("data-stream"));
    say("Connecting to the live tail…");
    source.onopen = function () { say(paused ? "Paused" : "Live"); };
    source.onmessage = function (event) {
      var li = row(event.data, event.lastEventId);
      if (paused) {
        held.push(li);
        if (held.length > KEEP) held.shift();
      } else {
        add([li]);
      }
    };
    source.onerror = function () {
      say(source.readyState === EventSource.CLOSED
        ? "The live tail stopped: reload the page (or sign in again)."
        : "The live tail was cut: reconnecting…");
    };
    if (pause) {
      pause.hidden = false;
      pause.addEventListener("click", function () {
        paused = !paused;
        pause.textContent = paused ? "Resume" : "Pause";
        say(paused ? "Paused" : "Live");
        if (!paused) { add(held); held = []; }
      });
    }
    window.addEventListener("pagehide", function () { source.close(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var list = document.querySelector("ol#lines[data-stream]");
    if (list && window.EventSource) follow(list);
  });
})();
