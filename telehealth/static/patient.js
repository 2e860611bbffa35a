// Patient page, phone first: log in (or accept an invite), line up the photo with live checks from the server
// (light, focus, the scale marker, the wound in frame), preview it with Retake / Send, get a plain receipt, and see
// what was sent and whether the clinic has reviewed it. No ids or fingerprints are shown.
"use strict";

const $ = (id) => document.getElementById(id);
// sessionStorage, not localStorage: the session ends with the tab on a shared phone.
const TOKEN_KEY = "scopecast.telehealth.token";
const CHECK_EVERY_MS = 1200;  // one frame a little over a second: live enough, and light on a 2-core server
const PREVIEW_SIDE = 1280;  // frames sent for checking are scaled to this long side
let pendingKey = null; // one Idempotency-Key per chosen photo, so a retry after a dropped connection is not a duplicate
let pendingPhoto = null; // the Blob about to be sent
let camera = null;
let checkTimer = null;
let cameraSession = 0;  // a check still in flight from a closed camera must not speak for the new one

function show(id, visible) { $(id).hidden = !visible; }
function setError(message) { $("error").textContent = message || ""; show("error", Boolean(message)); }
function setStatus(message) { $("status").textContent = message || ""; }
// Invite links carry the token in the URL fragment (#invite=...), which the browser never sends to the server.
function inviteToken() { return new URLSearchParams(location.hash.slice(1)).get("invite"); }
function token() { return sessionStorage.getItem(TOKEN_KEY); }
const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

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

const SCREENS = ["login", "accept", "upload", "camera", "preview", "receipt"];
function screen(id) { SCREENS.forEach((s) => show(s, s === id)); }
function showLogin() { screen("login"); show("consult", false); show("history", false); }

async function showUpload() {
  screen("upload");
  setStatus("Loading your cases...");
  let cases = await (await api("/api/cases")).json();
  if (cases.length === 0) {
    const opened = await api("/api/cases", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({}),
    });
    cases = [await opened.json()];
  }
  $("case").replaceChildren(...cases.map((c) => {
    const option = document.createElement("option");
    option.value = String(c.id);
    option.textContent = c.label || "My wound";
    return option;
  }));
  setStatus("");
  await showHistory();
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

async function thumbnailUrl(path) {
  // Thumbnails need the bearer header, which an <img src> cannot send: fetch and show a blob URL.
  return URL.createObjectURL(await (await api(path)).blob());
}

async function showHistory() {
  const sent = await (await api("/api/my-photos")).json();
  const list = $("history-list");
  list.querySelectorAll("img").forEach((img) => URL.revokeObjectURL(img.src));
  const items = [];
  for (const p of sent) {
    const li = document.createElement("li");
    li.className = `sent ${p.status}`;
    const img = document.createElement("img");
    img.alt = "";  // the text beside it says what it is
    img.src = await thumbnailUrl(p.thumbnail_url);
    const text = document.createElement("span");
    const status = p.status === "reviewed" ? `Reviewed by your clinic on ${when(p.reviewed_at)}` : "Received, waiting for your clinic";
    text.textContent = `${p.case_label || "My wound"} · sent ${when(p.received_at)} · ${status}`;
    li.append(img, text);
    items.push(li);
  }
  list.replaceChildren(...items);
  show("history-empty", sent.length === 0);
  show("history", true);
  document.body.dataset.historyCount = String(sent.length);
}

async function startSession(response) {
  const session = await response.json();
  sessionStorage.setItem(TOKEN_KEY, session.token);
  await showUpload();
}

// -- checks --------------------------------------------------------------------------------------------------

function renderChecks(listId, checks) {
  const list = $(listId);
  list.replaceChildren(...checks.map((c) => {
    const li = document.createElement("li");
    li.dataset.check = c.name;
    li.className = c.passed ? "pass" : "fail";
    li.textContent = `${c.passed ? "✓" : "✗"} ${c.message}`;
    return li;
  }));
}

async function checkImage(blob) {
  const response = await api("/api/capture-check", { method: "POST", body: blob, headers: { "Content-Type": blob.type || "image/jpeg" } });
  return response.json();
}

function frameBlob(video, longSide) {
  const scale = Math.min(1, longSide / Math.max(video.videoWidth, video.videoHeight));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
}

// -- camera ----------------------------------------------------------------------------------------------------

async function openCamera() {
  setError("");
  // Readiness belongs to one camera session: a reopened camera is not ready until its own checks pass.
  document.body.dataset.liveReady = "";
  try {
    camera = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: "environment", width: { ideal: 1920 }, height: { ideal: 1080 } }, audio: false,
    });
  } catch (e) {
    setError(`The camera could not be opened (${e.name || e.message}). Allow camera access, or choose a photo you already took.`);
    return;
  }
  const session = ++cameraSession;
  $("viewfinder").srcObject = camera;
  screen("camera");
  document.body.dataset.camera = "open";
  document.body.dataset.liveReady = "";  // this camera session's checks, not the last one's
  $("checks").querySelectorAll("li").forEach((li) => { li.className = ""; });
  const tick = async () => {
    const video = $("viewfinder");
    if (!camera || session !== cameraSession) return;
    if (video.videoWidth) {
      try {
        const result = await checkImage(await frameBlob(video, PREVIEW_SIDE));
        if (session !== cameraSession || !camera) return;
        renderChecks("checks", result.checks);
        $("shoot-btn").textContent = result.ready ? "Take the photo now" : "Take the photo";
        document.body.dataset.liveReady = String(result.ready);
      } catch (e) { /* a missed check is not an error: the next one comes in a second */ }
    }
    if (camera && session === cameraSession) checkTimer = setTimeout(tick, CHECK_EVERY_MS);
  };
  tick();
}

function closeCamera() {
  cameraSession += 1;
  clearTimeout(checkTimer);
  if (camera) camera.getTracks().forEach((t) => t.stop());
  camera = null;
  document.body.dataset.camera = "closed";
  document.body.dataset.liveReady = "";
}

async function preview(blob) {
  pendingPhoto = blob;
  pendingKey = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const img = $("preview-img");
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(blob);
  $("preview-checks").replaceChildren();
  document.body.dataset.previewReady = "";
  screen("preview");
  setStatus("Checking the photo...");
  try {
    const result = await checkImage(blob);
    renderChecks("preview-checks", result.checks);
    document.body.dataset.previewReady = String(result.ready);
    setStatus(result.ready ? "The photo looks good." : "Some checks did not pass: you can retake it, or send it anyway.");
  } catch (e) {
    setStatus("");
    setError(e.message);  // e.g. "too small": the photo would be refused on sending too
  }
}

// -- events ----------------------------------------------------------------------------------------------------

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

$("camera-btn").addEventListener("click", openCamera);
$("camera-cancel-btn").addEventListener("click", () => { closeCamera(); screen("upload"); });
$("shoot-btn").addEventListener("click", async () => {
  const video = $("viewfinder");
  if (!video.videoWidth) { setStatus("The camera is still starting: try again in a moment."); return; }
  const blob = await frameBlob(video, 4096);  // full resolution: the photo the clinic measures
  closeCamera();
  await preview(blob);
});
$("photo").addEventListener("change", async () => {
  setError("");
  const file = $("photo").files[0];
  if (file) await preview(file);
});
$("retake-btn").addEventListener("click", () => {
  pendingPhoto = null;
  document.body.dataset.previewReady = "";
  $("photo").value = "";
  setStatus("");
  setError("");
  screen("upload");
});
$("another-btn").addEventListener("click", () => { screen("upload"); });

$("send").addEventListener("click", async () => {
  if (!pendingPhoto) { setError("Take or choose a photo first."); return; }
  if (!$("case").value) { setError("Your cases are still loading; try again in a moment."); return; }
  setError("");
  $("send").disabled = true;
  setStatus("Sending...");
  const form = new FormData();
  form.append("photo", pendingPhoto, pendingPhoto.name || "photo.jpg");
  try {
    const response = await api(`/api/cases/${$("case").value}/photos`, {
      method: "POST", body: form, headers: { "Idempotency-Key": pendingKey },
    });
    const receipt = await response.json();
    const img = $("thumb");
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = await thumbnailUrl(receipt.thumbnail_url);
    $("receipt-text").textContent = `Your photo arrived safely on ${when(receipt.received_at)}. It is kept with your record; location details from the phone are removed.`;
    pendingPhoto = null;
    $("photo").value = "";
    screen("receipt");
    setStatus("");
    await showHistory();
  } catch (err) {
    setStatus("");
    setError(`Not sent: ${err.message}. Nothing was lost: you can retake the photo or try again.`);
  } finally {
    $("send").disabled = false;
  }
});

$("logout").addEventListener("click", async () => {
  // The server revokes the session, so the token stops working everywhere, not only in this tab.
  const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
  sessionStorage.removeItem(TOKEN_KEY);
  await fetch("/api/logout", { method: "POST", headers }).catch(() => {});
  showLogin();
});

(async function init() {
  if (inviteToken()) {
    screen("accept");
  } else if (token()) {
    try { await showUpload(); } catch (err) { setError(err.message); }
  } else {
    showLogin();
  }
})();
