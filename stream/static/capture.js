// Publish this device's camera and watch the annotated copy come back. Served only to a signed-in clinician.
import { connect, FindingsPanel, AskPanel, wireSignOut } from "/static/scopecast.js";
wireSignOut(document.getElementById("signout"));
const errorBox = document.getElementById("error");
let session = null;
const askPanel = new AskPanel(document.getElementById("ask"), () => session);

async function start() {
  errorBox.textContent = "";
  const panel = new FindingsPanel(document.getElementById("panel"));
  try {
    const camera = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1280 }, height: { ideal: 720 }, facingMode: "environment" }, audio: false });
    document.getElementById("preview").srcObject = camera;
    session = await connect({ mode: "publish", stream: camera,
      onEvent: (e) => { panel.handle(e); askPanel.handle(e); }, onError: (m) => { errorBox.textContent = m; } });
    document.getElementById("annotated").srcObject = session.remote;
    const link = `/monitor?stream=${encodeURIComponent(session.streamId)}`;
    document.getElementById("share").innerHTML = `stream <code>${session.streamId}</code> · <a href="${link}" target="_blank">open in monitor</a>`;
    window.scopecastSession = session;
  } catch (e) { errorBox.textContent = e.message || String(e); }
}
document.getElementById("start").onclick = start;
if (new URLSearchParams(location.search).get("auto") === "1") start();
