// sysflow console: makes the run page live. Host cells change as operation events arrive over
// Server-Sent Events (resumed from the last event id the page saw); run-level events re-read the
// status panel from the server. Without this script the page still works (reload to refresh).
(function () {
  "use strict";
  var root = document.getElementById("run");
  if (!root) { return; }
  var run = root.dataset.run;
  var live = document.getElementById("live");
  var refreshing = false, again = false;
  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch("/console/runs/" + encodeURIComponent(run) + "/panel", {credentials: "same-origin"})
      .then(function (r) { return r.text(); })
      .then(function (html) { document.getElementById("panel").innerHTML = html; })
      .finally(function () { refreshing = false; if (again) { again = false; refresh(); } });
  }
  function cell(host, state, text) {
    var li = document.getElementById("host-" + host);
    if (!li) { return; }
    li.className = "host s-" + state;
    li.querySelector(".st").textContent = text;
  }
  var source = new EventSource("/api/v1/runs/" + encodeURIComponent(run) + "/events?after=" + root.dataset.lastId);
  source.onmessage = function (msg) {
    var e = JSON.parse(msg.data);
    if (e.kind === "op_started" && e.host) {
      cell(e.host, "running", "running: " + e.task);
    } else if (e.kind === "op_finished" && e.host) {
      var st = (e.data && e.data.state) || "unknown";
      cell(e.host, st === "succeeded" ? "in_progress" : st, st + ": " + e.task);
    } else if (e.kind !== "op_progress" && e.kind !== "op_skipped" && e.kind !== "state_checked") {
      live.textContent = e.kind.replace(/_/g, " ") + (e.message ? ": " + e.message : "");
      refresh();
      if (e.kind === "worker_exited") { source.close(); }
    }
  };
  source.addEventListener("dropped", function () { source.close(); window.location.reload(); });
})();
