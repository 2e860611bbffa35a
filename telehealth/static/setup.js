// First-run setup: the token comes from the URL fragment (#token=...), which the browser never sends to the server.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  // The same key as the patient page: pages of this origin find the bearer token here (this tab only).
  const TOKEN_KEY = "scopecast.telehealth.token";
  const setupToken = new URLSearchParams(location.hash.slice(1)).get("token");

  function setError(message) {
    $("error").textContent = message || "";
    $("error").hidden = !message;
  }

  async function reason(response) {
    try {
      const body = await response.json();
      if (typeof body.detail === "string") return body.detail;
      if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
    } catch (_) { /* not JSON */ }
    return `${response.status} ${response.statusText}`;
  }

  $("setup").addEventListener("submit", async (event) => {
    event.preventDefault();
    setError("");
    const response = await fetch("/api/setup", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: setupToken, email: $("email").value, password: $("password").value }),
    }).catch(() => null);
    if (!response) { setError("The server did not answer: is scopecast still running?"); return; }
    if (!response.ok) {
      setError(await reason(response));
      if (response.status === 410) $("setup").hidden = true;
      return;
    }
    const session = await response.json();
    sessionStorage.setItem(TOKEN_KEY, session.token);
    history.replaceState(null, "", "/setup"); // the spent link should not stay in the address bar or history
    $("done-email").textContent = session.user.email;
    $("setup").hidden = true;
    $("done").hidden = false;
  });

  if (setupToken) $("setup").hidden = false;
  else $("no-link").hidden = false;
})();
