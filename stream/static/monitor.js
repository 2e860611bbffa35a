// The surgeon monitor: pick a stream, watch it annotated, findings panel and ask box. The page is served only to a
// signed-in clinician; the socket and /api/streams carry the same session cookie.
// Theatre mode (T) lets the video fill the screen with a status badge readable from across the room; O turns the
// overlay off and on (the server switches this viewer to the plain or annotated video: no renegotiation), F is
// fullscreen, P the findings panel.
// With Janus configured the video comes from Janus (one encode for every viewer); when Janus is down, or watching
// through it fails, the page watches directly from scopecast and says so.
import { connect, FindingsPanel, AskPanel, StatusBadge, wireSignOut } from "/static/scopecast.js";
import { watchThroughJanus } from "/static/janus_watch.js";
wireSignOut(document.getElementById("signout"));
const select = document.getElementById("streams");
const errorBox = document.getElementById("error");
const notice = document.getElementById("notice");
const video = document.getElementById("video");
const overlayButton = document.getElementById("overlay");
const opacity = document.getElementById("opacity");
const badge = new StatusBadge(document.getElementById("status-badge"));
let session = null;
let renewal = null;  // timer that keeps this page's Janus token alive while it watches through Janus
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
  notice.textContent = "";
  clearInterval(renewal);
  if (session) session.close();
  session = null;
  const panel = new FindingsPanel(document.getElementById("panel"));
  const onEvent = (e) => { panel.handle(e); askPanel.handle(e); badge.handle(e); onView(e); onRecording(e); };
  const streamId = select.value;
  const janus = await fetch(`/api/streams/${encodeURIComponent(streamId)}/janus`).then((r) => r.json())
    .catch(() => ({ configured: false }));
  if (janus.configured) {
    let reason = janus.reason;
    if (janus.available) {
      try {
        const ice = await fetch("/api/ice-config").then((r) => r.json()).catch(() => ({ iceServers: [] }));
        session = await watchThroughJanus({ info: janus, ice, onEvent,
          onEnd: (why) => { if (session && session.via === "janus") watchDirectly(streamId, onEvent, why); } });
        video.srcObject = session.remote;
        window.scopecastSession = session;
        document.body.dataset.path = "janus";
        keepTokenAlive(streamId, janus);
        await openQuestions(session, streamId);
        return;
      } catch (e) { reason = e.message; }
    }
    return watchDirectly(streamId, onEvent, reason);
  }
  return watchDirectly(streamId, onEvent, null);
}

// Questions and their answers are this viewer's own: a data-channel-only connection to scopecast (no video, so no
// encode) beside the Janus video.
async function openQuestions(janusSession, streamId) {
  try {
    const questions = await connect({ mode: "questions", streamId, onEvent: (e) => askPanel.handle(e),
      onError: (m) => { errorBox.textContent = m; } });
    const closeJanus = janusSession.close;
    janusSession.channel = questions.channel;
    janusSession.close = () => { closeJanus(); questions.close(); };
    notice.textContent = "Watching through Janus (the overlay switch needs the direct view)";
  } catch (e) {
    notice.textContent = "Watching through Janus: questions and the overlay switch need the direct view";
  }
}

// Janus checks the token on every request, keepalives included: renew it well within its lifetime. A token that
// could not be renewed (expired, or Janus restarted and forgot it) means subscribing again with the new one.
function keepTokenAlive(streamId, info) {
  let token = info.token;
  const every = Math.max(10, (info.expires_at - Date.now() / 1000) / 3) * 1000;
  renewal = setInterval(async () => {
    const response = await fetch(`/api/streams/${encodeURIComponent(streamId)}/janus?renew=${encodeURIComponent(token)}`)
      .catch(() => null);
    if (!response) return;
    if (response.status === 401) { clearInterval(renewal); errorBox.textContent = "signed out: sign in again to keep watching"; return; }
    const next = await response.json().catch(() => ({}));
    if (!next.available || next.token === token) return;
    token = next.token;
    watch();
  }, every);
}

async function watchDirectly(streamId, onEvent, janusProblem) {
  clearInterval(renewal);
  if (session) session.close();
  session = null;
  document.body.dataset.path = "direct";
  if (janusProblem) notice.textContent = `Janus unavailable: watching directly from scopecast (${janusProblem})`;
  try {
    session = await connect({ mode: "watch", streamId, onEvent, onError: (m) => { errorBox.textContent = m; } });
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
