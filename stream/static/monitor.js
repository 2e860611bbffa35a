// The surgeon monitor: pick a stream, watch it annotated, findings panel and ask box. The page is served only to a
// signed-in clinician; the socket and /api/streams carry the same session cookie.
import { connect, FindingsPanel, AskPanel, wireSignOut } from "/static/scopecast.js";
wireSignOut(document.getElementById("signout"));
const select = document.getElementById("streams");
const errorBox = document.getElementById("error");
const video = document.getElementById("video");
let session = null;
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
      onEvent: (e) => { panel.handle(e); askPanel.handle(e); }, onError: (m) => { errorBox.textContent = m; } });
    video.srcObject = session.remote;
    window.scopecastSession = session;
  } catch (e) { errorBox.textContent = e.message; }
}

document.getElementById("watch").onclick = watch;
const streams = await loadStreams();
if (streams.length) watch(); else errorBox.textContent = "no live streams";
