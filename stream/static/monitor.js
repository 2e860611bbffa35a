// The surgeon monitor: pick a stream, watch it annotated, findings panel and ask box. The page is served only to a
// signed-in clinician; the socket and /api/streams carry the same session cookie.
// Theatre mode (T) lets the video fill the screen with a status badge readable from across the room; O turns the
// overlay off and on (the server switches this viewer to the plain or annotated video: no renegotiation), F is
// fullscreen, P the findings panel.
import { connect, FindingsPanel, AskPanel, StatusBadge, wireSignOut } from "/static/scopecast.js";
wireSignOut(document.getElementById("signout"));
const select = document.getElementById("streams");
const errorBox = document.getElementById("error");
const video = document.getElementById("video");
const overlayButton = document.getElementById("overlay");
const opacity = document.getElementById("opacity");
const badge = new StatusBadge(document.getElementById("status-badge"));
let session = null;
let overlayOn = true;
const askPanel = new AskPanel(document.getElementById("ask"), () => session);

async function loadStreams() {
  const response = await fetch("/api/streams");
  if (response.status === 401) {  // the session ended while the page was open: sign in again, then come back
    location.assign(`/signin?next=${encodeURIComponent(location.pathname + location.search)}`);
    return [];
  }
  const streams = await response.json();
  select.replaceChildren(...streams.map((s) => new Option(`${s.stream_id} (${s.label})`, s.stream_id)));
  const wanted = new URLSearchParams(location.search).get("stream");
  if (wanted) select.value = wanted;
  return streams;
}

async function watch() {
  errorBox.textContent = "";
  if (session) session.close();
  const panel = new FindingsPanel(document.getElementById("panel"));
  try {
    session = await connect({ mode: "watch", streamId: select.value,
      onEvent: (e) => { panel.handle(e); askPanel.handle(e); badge.handle(e); onView(e); onRecording(e); },
      onError: (m) => { errorBox.textContent = m; } });
    video.srcObject = session.remote;
    window.scopecastSession = session;
    if (!overlayOn || opacity.value !== "100") sendView();
  } catch (e) { errorBox.textContent = e.message; }
}

function sendView() {
  if (session && session.channel.readyState === "open") {
    session.channel.send(JSON.stringify({ type: "view", overlay: overlayOn, opacity: Number(opacity.value) / 100 }));
  }
}

function onView(event) {
  if (event.type !== "view") return;
  overlayButton.textContent = event.overlay ? "Overlay on" : "Overlay off";
  overlayButton.setAttribute("aria-pressed", String(event.overlay));
  document.body.dataset.overlay = event.overlay ? `on ${event.opacity}` : "off";
}

function toggle(button, className) {
  const on = !document.body.classList.contains(className);
  document.body.classList.toggle(className, on);
  button.setAttribute("aria-pressed", String(on));
}

const theatreButton = document.getElementById("theatre");
const panelButton = document.getElementById("panel-toggle");
const actions = {
  t: () => toggle(theatreButton, "theatre"),
  p: () => { document.body.classList.toggle("panel-hidden"); panelButton.setAttribute("aria-pressed", String(!document.body.classList.contains("panel-hidden"))); },
  o: () => { overlayOn = !overlayOn; sendView(); },
  f: () => (document.fullscreenElement ? document.exitFullscreen() : document.documentElement.requestFullscreen()).catch(() => null),
};
theatreButton.onclick = actions.t;
panelButton.onclick = actions.p;
overlayButton.onclick = actions.o;
document.getElementById("fullscreen").onclick = actions.f;
opacity.onchange = sendView;
document.addEventListener("keydown", (ev) => {
  if (ev.target.closest("input, textarea, select") || ev.ctrlKey || ev.metaKey || ev.altKey) return;  // typing a question
  const action = actions[ev.key.toLowerCase()];
  if (action) { ev.preventDefault(); action(); }
});
if (new URLSearchParams(location.search).get("theatre") === "1") actions.t();

document.getElementById("watch").onclick = watch;
const streams = await loadStreams();
if (streams.length) watch(); else errorBox.textContent = "no live streams";

// -- recording: started for a case (its consent decides, the server says why not), its light from the stream's events
const recordLight = document.getElementById("record-light");
const recordStop = document.getElementById("record-stop");

function showRecording(state, caseId, reason) {
  document.body.dataset.recording = state;
  recordLight.className = `record-light ${state}`;
  recordLight.textContent = state === "recording" ? `● REC case ${caseId}`
    : state === "failed" ? `Recording ended: ${reason}`
      : state === "stopped" ? (reason ? `Recording stopped: ${reason}` : "Recording saved") : "";
  recordStop.hidden = state !== "recording";
}

function onRecording(event) {
  if (event.type === "recording") showRecording(event.state, event.case_id, event.reason);
}

// Writes carry the session cookie only with this header, which another site's page cannot send.
async function recordingCall(path, body) {
  const response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json", "X-Scopecast-Request": "1" },
    body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(typeof data.detail === "string" ? data.detail : `request failed (${response.status})`);
  return data;
}

document.getElementById("record-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  errorBox.textContent = "";
  const caseId = Number(document.getElementById("record-case").value);
  recordingCall(`/api/streams/${encodeURIComponent(select.value)}/recording`, { case_id: caseId })
    .then((s) => showRecording(s.state, s.case_id, s.reason)).catch((e) => { errorBox.textContent = e.message; });
});
recordStop.addEventListener("click", () => {
  recordingCall(`/api/streams/${encodeURIComponent(select.value)}/recording/stop`)
    .then((s) => showRecording(s.state, s.case_id, s.reason)).catch((e) => { errorBox.textContent = e.message; });
});
