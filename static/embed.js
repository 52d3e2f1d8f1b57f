// feedgate screens: keep the embed session token in memory only, send it on every htmx request,
// and tell the host page when the session ends so it can mint a new token.
(function () {
  "use strict";
  var url = new URL(window.location.href);
  var token = url.searchParams.get("token");
  if (token) {
    // Out of the address bar: not in history, bookmarks, Referer or screenshots.
    url.searchParams.delete("token");
    window.history.replaceState(window.history.state, "", url.toString());
  }
  var embedded = window.location.pathname.indexOf("/dashboard-l/embedded") === 0;

  function sessionEnded() {
    var banner = document.getElementById("session-ended");
    if (banner) banner.hidden = false;
    if (embedded && window.parent !== window) {
      window.parent.postMessage({ type: "feedgate:session-ended", workspaceId: url.searchParams.get("workspaceId") }, "*");
    }
  }

  document.addEventListener("htmx:configRequest", function (event) {
    if (token) event.detail.headers["Authorization"] = "Bearer " + token;
  });
  document.addEventListener("htmx:responseError", function (event) {
    if (event.detail.xhr.status === 401) sessionEnded();
  });
  // The host answers a session-ended message with a fresh token.
  window.addEventListener("message", function (event) {
    if (event.source !== window.parent || !event.data || event.data.type !== "feedgate:token") return;
    token = String(event.data.token);
    var banner = document.getElementById("session-ended");
    if (banner) banner.hidden = true;
  });
  // Downloads cannot carry a header on a plain link: fetch with the token, then save the blob.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-download]");
    if (!link) return;
    // Before htmx's boost sees the click, which would swap the file into the page.
    event.preventDefault();
    event.stopPropagation();
    var headers = token ? { Authorization: "Bearer " + token } : {};
    fetch(link.href, { headers: headers, credentials: "same-origin" }).then(function (response) {
      if (response.status === 401) { sessionEnded(); return null; }
      return response.blob();
    }).then(function (blob) {
      if (!blob) return;
      var save = document.createElement("a");
      save.href = URL.createObjectURL(blob);
      save.download = link.getAttribute("data-download") || "download.csv";
      save.click();
      URL.revokeObjectURL(save.href);
    });
  }, true);
  document.addEventListener("DOMContentLoaded", function () {
    var status = document.body && document.body.getAttribute("data-status");
    if (status === "401") sessionEnded();
  });
})();
