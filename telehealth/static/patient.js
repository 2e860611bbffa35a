// Patient page: log in (or accept an invite), pick a case, send a photo, show the receipt or the clear reason.
"use strict";

const $ = (id) => document.getElementById(id);
// sessionStorage, not localStorage: the session ends with the tab on a shared phone.
const TOKEN_KEY = "scopecast.telehealth.token";
let pendingKey = null; // one Idempotency-Key per chosen photo, so a retry after a dropped connection is not a duplicate

function show(id, visible) { $(id).hidden = !visible; }
function setError(message) { $("error").textContent = message || ""; show("error", Boolean(message)); }
function setStatus(message) { $("status").textContent = message || ""; }
// Invite links carry the token in the URL fragment (#invite=...), which the browser never sends to the server.
function inviteToken() { return new URLSearchParams(location.hash.slice(1)).get("invite"); }
function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function api(path, options = {}, signInOn401 = true) {
  const headers = new Headers(options.headers || {});
  if (token()) headers.set("Authorization", `Bearer ${token()}`);
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401 && signInOn401) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin();
  }
  if (!response.ok) {
    let reason = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (typeof body.detail === "string") reason = body.detail;
      else if (Array.isArray(body.detail)) reason = body.detail.map((d) => d.msg).join("; ");
    } catch (_) { /* not JSON: keep the status line */ }
    throw new Error(reason);
  }
  return response;
}

function showLogin() { show("login", true); show("accept", false); show("upload", false); show("consult", false); }

async function showUpload() {
  show("login", false); show("accept", false); show("upload", true);
  // Until the case list is in, there is nowhere to send a photo: keep the button off.
  $("send").disabled = true;
  setStatus("Loading your cases...");
  let cases = await (await api("/api/cases")).json();
  if (cases.length === 0) {
    const opened = await api("/api/cases", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({}),
    });
    cases = [await opened.json()];
  }
  const select = $("case");
  select.replaceChildren(...cases.map((c) => {
    const option = document.createElement("option");
    option.value = String(c.id);
    option.textContent = c.label ? `${c.label} (case ${c.id})` : `Case ${c.id}`;
    return option;
  }));
  setStatus("");
  $("send").disabled = false;
  await showOpenConsult(cases);
}

// An open video consult on one of the patient's cases: the call page signs in with this tab's session.
async function showOpenConsult(cases) {
  for (const c of cases) {
    const response = await api(`/api/cases/${c.id}/consults`);
    if (!response.ok) continue;
    const open = (await response.json()).filter((k) => k.state === "open").pop();
    if (open) {
      $("consult-link").href = `/consult#room=${encodeURIComponent(open.room_id)}&as=patient`;
      show("consult", true);
      document.body.dataset.consultsChecked = "1";
      return;
    }
  }
  show("consult", false);
  document.body.dataset.consultsChecked = "1";
}

async function startSession(response) {
  const session = await response.json();
  sessionStorage.setItem(TOKEN_KEY, session.token);
  await showUpload();
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  setError("");
  try {
    await startSession(await api("/api/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: $("email").value, password: $("password").value }),
    }));
  } catch (err) { setError(err.message); }
});

$("accept").addEventListener("submit", async (event) => {
  event.preventDefault();
  setError("");
  const invite = inviteToken();
  try {
    // A 401 here is a wrong password for an existing account: stay on this form so it can be entered again.
    await startSession(await api(`/api/invites/${encodeURIComponent(invite)}/accept`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ password: $("new-password").value }),
    }, false));
    history.replaceState(null, "", "/patient"); // the used link should not stay in the address bar
  } catch (err) { setError(err.message); }
});

$("photo").addEventListener("change", () => {
  pendingKey = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
  setError("");
});

$("upload").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = $("photo").files[0];
  if (!file) { setError("Choose or take a photo first."); return; }
  if (!$("case").value) { setError("Your cases are still loading; try again in a moment."); return; }
  setError(""); show("receipt", false);
  $("send").disabled = true;
  setStatus("Sending...");
  const form = new FormData();
  form.append("photo", file, file.name || "photo.jpg");
  try {
    const response = await api(`/api/cases/${$("case").value}/photos`, {
      method: "POST", body: form, headers: { "Idempotency-Key": pendingKey },
    });
    const receipt = await response.json();
    await showReceipt(receipt);
    setStatus("");
  } catch (err) {
    setStatus("");
    setError(err.message);
  } finally {
    $("send").disabled = false;
  }
});

async function showReceipt(receipt) {
  // The thumbnail needs the bearer header, which an <img src> cannot send: fetch it and show a blob URL.
  const thumb = await (await api(receipt.thumbnail_url)).blob();
  const img = $("thumb");
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(thumb);
  await img.decode().catch(() => {});
  $("r-id").textContent = `#${receipt.id}`;
  $("r-time").textContent = new Date(receipt.received_at).toLocaleString();
  $("r-size").textContent = `${receipt.width} x ${receipt.height} px`;
  $("r-sha").textContent = receipt.sha256;
  show("receipt", true);
}

$("logout").addEventListener("click", async () => {
  // The server revokes the session, so the token stops working everywhere, not only in this tab.
  const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
  sessionStorage.removeItem(TOKEN_KEY);
  await fetch("/api/logout", { method: "POST", headers }).catch(() => {});
  show("receipt", false);
  showLogin();
});

(async function init() {
  if (inviteToken()) {
    show("accept", true);
  } else if (token()) {
    try { await showUpload(); } catch (err) { setError(err.message); }
  } else {
    showLogin();
  }
})();
