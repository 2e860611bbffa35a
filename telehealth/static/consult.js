// The consult call page, for both sides. The patient's link carries a join key in the fragment (never sent to the
// server in a URL); a clinician is signed in by the session cookie (from the GP page, or by signing in here) and
// joins with a short-lived ticket for this room. The AI panel, overlay switch, capture and end buttons exist for the
// clinician only.
import { connect, FindingsPanel, AskPanel } from "/static/scopecast.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.hash.slice(1));
const roomId = params.get("room");
const joinKey = params.get("key");
const consultId = params.get("consult");
// A patient arrives with the key from their link, or from their patient page (`as=patient`), signed in in this tab.
const side = joinKey || params.get("as") === "patient" ? "patient" : "clinician";
const PATIENT_TOKEN_KEY = "scopecast.telehealth.token";  // where the patient page keeps this tab's session
const RETRY_MAX_S = 10;

let token = null;  // a patient signed in on their patient page: this tab's bearer token
let csrf = null;  // a clinician signed in by cookie: the session's CSRF token for writes
let camera = null;
let session = null;
let facing = side === "patient" ? "environment" : "user";  // a patient shows the wound with the back camera
let stopped = false;
let retries = 0;
let findings = null;
let askPanel = null;

document.body.dataset.side = side;
$("side").textContent = side === "patient" ? "Patient" : "Clinician";

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function setState(state, text) {
  document.body.dataset.callState = state;
  $("call-status").textContent = text;
}

function waitingText() {
  return side === "patient" ? "Waiting for your clinician to join…" : "Waiting for the patient to join…";
}

async function api(method, path) {
  const headers = token ? { Authorization: `Bearer ${token}` } : csrf && method !== "GET" ? { "X-CSRF-Token": csrf } : {};
  const r = await fetch(path, { method, headers });
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (!r.ok) throw new Error((data && data.detail) || `${r.status}`);
  return data;
}

async function openCamera() {
  const video = { facingMode: facing, width: { ideal: 1280 }, height: { ideal: 720 } };
  try {
    return await navigator.mediaDevices.getUserMedia({ video, audio: true });
  } catch (e) {
    // No microphone (or refused): video alone still lets the clinician see the wound; say so.
    const stream = await navigator.mediaDevices.getUserMedia({ video, audio: false });
    showError("Your microphone is not available: the clinician will see you but not hear you.");
    return stream;
  }
}

function onEvent(event) {
  if (event.type === "room") {
    document.body.dataset.peer = String(event.peer_present);
    if (event.event === "ended") return finish("The consult has ended. Thank you.", false);
    if (event.event === "replaced") return finish("You joined this call from another window or device, so this one was disconnected.", true);
    if (event.peer_present) setState("in-call", side === "patient" ? "In the call with your clinician" : "In the call with the patient");
    else setState("waiting", waitingText());
    return;
  }
  if (event.type === "view") {
    overlayOn = event.overlay;
    $("overlay-btn").textContent = event.overlay ? "AI overlay: on" : "AI overlay: off";
    $("overlay-btn").setAttribute("aria-pressed", String(event.overlay));
    document.body.dataset.overlay = event.overlay ? "on" : "off";
    return;
  }
  if (event.type === "recording") return showRecording(event);
  if (side === "clinician") {
    findings.handle(event);
    askPanel.handle(event);
  }
}

async function join() {
  stopped = false;
  $("lobby").hidden = true;
  $("login").hidden = true;
  $("ended").hidden = true;
  $("call").hidden = false;
  setState("connecting", "Connecting…");
  try {
    if (!camera) camera = await openCamera();
  } catch (e) {
    return finish(`The camera could not be opened (${e.name || e.message}). Allow camera access and join again.`, true);
  }
  $("local").srcObject = camera;
  let current;
  try {
    // A clinician's ticket lasts two minutes: a fresh one for every (re)join.
    const credential = side === "clinician" ? (await api("POST", `/api/consults/${consultId}/join-ticket`)).credential : joinKey || token || "";
    current = await connect({ mode: "join", stream: camera, roomId, credential, onEvent });
  } catch (e) {
    if (e.code === "turn_unreachable") return finish(e.reason, true);  // the relay may come back: offer Join again
    if (e.code) return finish(e.reason, false);  // the server refused: retrying will not help
    return reconnect();
  }
  session = current;
  window.scopecastSession = current;
  retries = 0;
  $("remote").srcObject = current.remote;
  let lostSince = null;
  current.pc.onconnectionstatechange = () => {
    const state = current.pc.connectionState;
    if (state === "failed") reconnect(current);
    else if (state === "disconnected") {
      lostSince = Date.now();
      setState("reconnecting", "Connection unstable…");
      setTimeout(() => { if (current.pc.connectionState === "disconnected" && Date.now() - lostSince >= 4000) reconnect(current); }, 4000);
    }
  };
  current.ws.onclose = () => { if (session === current) reconnect(current); };
}

function reconnect(from = session) {
  if (stopped || (from && from !== session)) return;
  if (session) session.close();
  session = null;
  const delay = Math.min(RETRY_MAX_S, 2 ** retries++);
  setState("reconnecting", `Connection lost: reconnecting in ${delay} s…`);
  setTimeout(() => { if (!stopped) join(); }, delay * 1000);
}

function finish(text, canRejoin) {
  stopped = true;
  const old = session;
  session = null;
  if (old) old.close();
  if (camera) camera.getTracks().forEach((t) => t.stop());
  camera = null;
  document.body.dataset.callState = canRejoin ? "left" : "ended";
  $("call").hidden = true;
  $("ended").hidden = false;
  $("ended-text").textContent = text;
  $("rejoin-btn").hidden = !canRejoin;
}

async function switchCamera() {
  if (!session || !camera) return;
  facing = facing === "user" ? "environment" : "user";
  try {
    const fresh = await navigator.mediaDevices.getUserMedia({ video: { facingMode: facing, width: { ideal: 1280 }, height: { ideal: 720 } } });
    const track = fresh.getVideoTracks()[0];
    const sender = session.pc.getSenders().find((s) => s.track && s.track.kind === "video");
    await sender.replaceTrack(track);  // no renegotiation: the server keeps the same stream
    camera.getVideoTracks().forEach((t) => { t.stop(); camera.removeTrack(t); });
    camera.addTrack(track);
    $("local").srcObject = camera;
  } catch (e) { showError(`Could not switch camera: ${e.message}`); }
}

async function capture() {
  $("capture-btn").disabled = true;
  try {
    const receipt = await api("POST", `/api/consults/${consultId}/capture`);
    const list = $("captures");
    if (list.querySelector(".muted")) list.textContent = "";
    const li = document.createElement("li");
    li.className = "capture";
    li.dataset.photoId = receipt.id;
    const img = document.createElement("img");
    img.src = `/api/photos/${receipt.id}/thumbnail`;
    img.alt = `captured photo ${receipt.id}`;
    li.append(img, `photo ${receipt.id} · ${new Date(receipt.received_at).toLocaleTimeString()} · saved to the case`);
    list.prepend(li);
    showError("");
  } catch (e) { showError(`Capture failed: ${e.message}`); }
  $("capture-btn").disabled = false;
}

// Both sides see when the call is recorded; the clinician starts and stops it (the case's consent decides).
function showRecording(event) {
  const on = event.state === "recording";
  document.body.dataset.recording = event.state;
  $("recording-notice").hidden = event.state === "stopped" && !event.reason;
  $("recording-notice").textContent = on ? "● This consult is being recorded"
    : event.reason ? `Recording ended: ${event.reason}` : "";
  if (side === "clinician" && consultId) {
    $("record-btn").hidden = on;
    $("record-stop-btn").hidden = !on;
  }
}

async function recordingCall(path) {
  try {
    const state = await api("POST", path);
    showRecording({ state: state.state, reason: state.reason });
    showError("");
  } catch (e) { showError(`Recording: ${e.message}`); }
}

function startClinician(csrfToken) {
  csrf = csrfToken;
  $("call").classList.add("clinician");
  document.querySelectorAll(".clinician-only").forEach((e) => { e.hidden = false; });
  if (!consultId) { $("capture-btn").hidden = true; $("end-btn").hidden = true; $("record-btn").hidden = true; }
  findings = new FindingsPanel($("findings"));
  askPanel = new AskPanel($("ask"), () => session);
  join();
}

$("join-btn").onclick = join;
$("rejoin-btn").onclick = () => { retries = 0; join(); };
$("leave-btn").onclick = () => finish("You left the call. You can join again while the consult is open.", true);
$("switch-btn").onclick = switchCamera;
$("capture-btn").onclick = capture;
$("record-btn").onclick = () => recordingCall(`/api/consults/${consultId}/recording`);
$("record-stop-btn").onclick = () => recordingCall(`/api/consults/${consultId}/recording/stop`);
// Ending hangs up both sides and voids the patient's link: ask first, since a slip of the mouse cannot be undone.
$("end-btn").onclick = () => $("end-dialog").showModal();
$("end-cancel-btn").onclick = () => $("end-dialog").close();
$("end-confirm-btn").onclick = async () => {
  $("end-dialog").close();
  try { await api("POST", `/api/consults/${consultId}/end`); } catch (e) { showError(`Could not end the consult: ${e.message}`); }
};

function toggle(button, on, onText, offText) {
  button.setAttribute("aria-pressed", String(!on));
  button.textContent = on ? onText : offText;
}
$("mute-btn").onclick = () => {
  const tracks = camera ? camera.getAudioTracks() : [];
  if (!tracks.length) return showError("No microphone in this call.");
  const on = !tracks[0].enabled;
  tracks.forEach((t) => { t.enabled = on; });
  toggle($("mute-btn"), on, "Mute", "Unmute");
  document.body.dataset.muted = String(!on);
};
$("camera-btn").onclick = () => {
  const tracks = camera ? camera.getVideoTracks() : [];
  const on = tracks.length ? !tracks[0].enabled : false;
  tracks.forEach((t) => { t.enabled = on; });  // a disabled track sends black frames: the call stays up
  toggle($("camera-btn"), on, "Camera off", "Camera on");
  document.body.dataset.cameraOff = String(!on);
};
let overlayOn = true;
$("overlay-btn").onclick = () => {
  if (!session || session.channel.readyState !== "open") return showError("Not connected yet: try again in a moment.");
  overlayOn = !overlayOn;
  session.channel.send(JSON.stringify({ type: "view", overlay: overlayOn, opacity: 1 }));
};

if (!roomId) {
  showError("This link is incomplete: it names no consult. Open the link you were sent.");
} else if (side === "patient") {
  if (!joinKey) token = sessionStorage.getItem(PATIENT_TOKEN_KEY);
  if (!joinKey && !token) {
    showError("Sign in on your patient page first, or open the link your clinician sent you.");
  } else {
    $("lobby").hidden = false;
  }
} else {
  // Opened from the GP page (or reloaded): the session cookie signs the clinician in; otherwise sign in here.
  fetch("/api/session").then(async (r) => {
    const data = r.ok ? await r.json() : null;
    if (data && (data.user.role === "gp" || data.user.role === "admin")) return startClinician(data.csrf_token);
    $("login").hidden = false;
  }).catch(() => { $("login").hidden = false; });
  $("login").onsubmit = async (ev) => {
    ev.preventDefault();
    const r = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: $("email").value, password: $("password").value }) });
    const data = await r.json();
    if (!r.ok) return showError(data.detail || "sign-in failed");
    if (data.user.role !== "gp" && data.user.role !== "admin") return showError("only a clinician can join from this link");
    showError("");
    startClinician(data.csrf_token);
  };
}
