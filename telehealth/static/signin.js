// Sign-in page: signs in through /api/login (which sets the session cookie), then goes to ?next= if it is safe.
"use strict";

// Only a path on this origin is followed: one "/" and then not a second "/" or a "\" ("//evil" and "/\evil" are
// other hosts to a browser), and no backslash or control character anywhere (browsers drop tabs and newlines from
// URLs, so "/\t/evil" would become "//evil"). Anything else, or nothing, goes to "/".
function safeNext(raw) {
  if (typeof raw !== "string" || !/^\/(?![/\\])[^\\\u0000-\u001f\u007f]*$/.test(raw)) return "/";
  const url = new URL(raw, location.origin);
  return url.origin === location.origin ? url.pathname + url.search + url.hash : "/";
}

(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "scopecast.telehealth.token"; // shared with the other pages of this origin (this tab only)
  const next = safeNext(new URLSearchParams(location.search).get("next"));

  function setError(message) {
    $("error").textContent = message || "";
    $("error").hidden = !message;
  }

  $("signin").addEventListener("submit", async (event) => {
    event.preventDefault();
    setError("");
    const response = await fetch("/api/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: $("email").value, password: $("password").value }),
    }).catch(() => null);
    if (!response) { setError("The server did not answer; try again."); return; }
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    if (!response.ok) {
      setError((body && typeof body.detail === "string" && body.detail) || `${response.status} ${response.statusText}`);
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, body.token);
    location.replace(next); // replace: "back" should not return to the sign-in form
  });
})();
