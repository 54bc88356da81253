// changefeed dashboard: swap in the server-rendered HTML of every update (server-sent events).
// EventSource reconnects by itself after a dropped connection; the label says when it does.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var feed = document.getElementById("feed");
  var source = new EventSource("events");
  source.addEventListener("snapshot", function (event) {
    live.innerHTML = JSON.parse(event.data).html;
    feed.textContent = "live";
  });
  source.onerror = function () {
    feed.textContent = "reconnecting…";
  };
})();
