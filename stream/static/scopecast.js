// scopecast browser client: WebRTC signaling over /ws, findings on the "events" data channel.
// One socket per peer connection; ICE is gathered fully before the offer (aiortc does not trickle).

// mode: "publish" (send `stream`'s video, get it back annotated), "watch" (receive `streamId`), "questions" (only the
// data channel of `streamId`, for asking: the page gets the video and findings from Janus), or "join" (a consult
// room: send `stream`'s video and sound, receive the other side's; `roomId` and `credential` say which room and who).
export async function connect({ mode, streamId = null, stream = null, label = null, roomId = null, credential = null, onEvent, onError }) {
  // TURN credentials are time-limited and only for the signed-in (cookie) or, in a consult, the room's key holder.
  const headers = mode === "join" && roomId && credential ? { "X-Consult-Room": roomId, "X-Consult-Key": credential } : {};
  const config = await fetch("/api/ice-config", { headers }).then((r) => r.json())
    .catch(() => ({ iceServers: [], iceTransportPolicy: "all" }));
  const pc = new RTCPeerConnection(config);
  const channel = pc.createDataChannel("events");
  channel.onmessage = (msg) => {
    try { onEvent && onEvent(JSON.parse(msg.data)); } catch (e) { console.warn("bad event", e); }
  };
  if (mode === "publish" || mode === "join") {
    for (const track of stream.getVideoTracks()) pc.addTransceiver(track, { direction: "sendrecv" });
    if (mode === "join") for (const track of stream.getAudioTracks()) pc.addTransceiver(track, { direction: "sendrecv" });
  } else {
    pc.addTransceiver("video", { direction: "recvonly" });
  }
  const remoteStream = new MediaStream();
  const remote = new Promise((resolve) => {
    pc.ontrack = (ev) => {
      remoteStream.addTrack(ev.track);
      if (ev.track.kind === "video") resolve(remoteStream);
    };
  });
  await pc.setLocalDescription(await pc.createOffer());
  await iceGatheringComplete(pc);
  // A TURN server that does not answer yields no relayed candidate. Where only relayed paths are allowed nothing can
  // connect, so say so now; otherwise say it if the connection fails (a direct path may still work on a LAN).
  const relayProblem = turnUnanswered(config, pc.localDescription.sdp);
  if (relayProblem && config.iceTransportPolicy === "relay") {
    pc.close();
    const error = new Error(`${relayProblem}, and this server allows relayed video only: the video cannot connect`);
    error.code = "turn_unreachable";
    error.reason = "The video cannot connect right now: please try again later.";
    throw error;
  }
  pc.addEventListener("connectionstatechange", () => {
    if (pc.connectionState !== "failed" || !onError) return;
    onError(relayProblem ? `the video connection failed: ${relayProblem}`
      : "the video connection failed: no network path between this device and the server");
  });

  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  const answer = new Promise((resolve, reject) => {
    ws.onmessage = async (msg) => {
      const data = JSON.parse(msg.data);
      if (data.type === "answer") {
        await pc.setRemoteDescription({ type: "answer", sdp: data.sdp });
        resolve(data);
      } else if (data.type === "error") {
        onError && onError(`${data.code}: ${data.message}`);
        const error = new Error(`${data.code}: ${data.message}`);
        error.code = data.code;
        error.reason = data.message;  // the sentence alone, for pages that show it to patients
        reject(error);
      }
    };
    ws.onclose = () => reject(new Error("signaling socket closed"));
  });
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error("cannot reach the server")); });
  const request = mode === "publish" ? { type: "publish", sdp: pc.localDescription.sdp, label }
    : mode === "join" ? { type: "join", room_id: roomId, credential, sdp: pc.localDescription.sdp }
    : { type: "watch", stream_id: streamId, sdp: pc.localDescription.sdp, ...(mode === "questions" ? { video: false } : {}) };
  ws.send(JSON.stringify(request));
  let reply;
  try {
    reply = await answer;
  } catch (e) {
    pc.close(); ws.close();
    throw e;
  }
  // Under CPU or bandwidth pressure the browser may halve the picture or the frame rate: for a wound or a scope
  // the detail is the point, so it keeps the resolution and drops frames instead.
  for (const sender of pc.getSenders()) {
    if (!sender.track || sender.track.kind !== "video") continue;
    try {
      const params = sender.getParameters();
      params.degradationPreference = "maintain-resolution";
      await sender.setParameters(params);
    } catch (e) { console.warn("could not keep the resolution", e); }
  }
  if (mode === "questions" && channel.readyState !== "open") {  // no video will come: wait for the channel instead
    await new Promise((resolve, reject) => { channel.onopen = resolve; setTimeout(() => reject(new Error("no data channel")), 10000); });
  }
  return { pc, ws, channel, streamId: reply.stream_id, remote: mode === "questions" ? null : await remote,
           close() { pc.close(); ws.close(); } };
}

// Why no relayed candidate was gathered although TURN servers were given, or "" when relaying is fine (or unused).
function turnUnanswered(config, sdp) {
  const turnUrls = (config.iceServers || []).flatMap((server) => [].concat(server.urls || server.url || []))
    .filter((url) => /^turns?:/i.test(url));
  if (!turnUrls.length || /typ relay/.test(sdp)) return "";
  return `the TURN relay server (${turnUrls.join(", ")}) did not answer`;
}

function iceGatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", check); resolve(); } };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(resolve, 3000);  // host candidates suffice on a LAN; do not hang on a slow STUN
  });
}

// The side panel: AI status light, model, latency, and the objects of the newest findings.
export class FindingsPanel {
  constructor(root) {
    this.root = root;
    this.count = 0;
    root.innerHTML = `
      <div class="status"><span class="light" data-role="light"></span><span data-role="status">waiting for AI status…</span></div>
      <dl class="stats">
        <dt>Model</dt><dd data-role="model">–</dd>
        <dt>Inference</dt><dd data-role="latency">–</dd>
        <dt>Findings events</dt><dd data-role="count">0</dd>
      </dl>
      <h3>Findings</h3><ul class="objects" data-role="objects"><li class="none">none yet</li></ul>`;
    this.el = (role) => root.querySelector(`[data-role=${role}]`);
  }
  handle(event) {
    if (event.type === "status") {
      const state = aiState(event);
      this.aiKind = state.kind;
      this.el("light").className = "light " + state.kind;
      this.el("status").textContent = state.text;
    } else if (event.type === "findings") {
      this.count += 1;
      this.el("count").textContent = String(this.count);
      this.el("model").textContent = `${event.model.name} ${event.model.version}`;
      this.el("latency").textContent = `${event.inference_ms.toFixed(1)} ms`;
      const list = this.el("objects");
      // While amber the stream holds findings back (also for the few known frames before it resumes).
      if ((event.content && event.content.in_domain === false) || this.aiKind === "amber") {
        // The model made no statement about this frame: "nothing detected" would be a claim it cannot make.
        list.replaceChildren(Object.assign(document.createElement("li"), {
          className: "none withheld",
          textContent: `withheld: this frame does not look like ${event.content ? event.content.content : "what the model knows"}` }));
        return;
      }
      list.replaceChildren(...(event.objects.length ? event.objects.map((o) => {
        const li = document.createElement("li");
        li.className = "object";
        li.textContent = findingWords(o);
        return li;
      }) : [Object.assign(document.createElement("li"), { className: "none", textContent: "nothing detected" })]));
    }
  }
}

// One finding as the overlay names it and a clinician would say it: "polyp 3: about 12% of the frame, lower left;
// confidence high" (the same words as perception.vlm.clinical_words).
export function findingWords(o) {
  const share = o.frame_share * 100;
  const pct = share < 10 ? share.toFixed(1) : share.toFixed(0);
  return `${o.name || o.label}: about ${pct}% of the frame, ${o.where}; confidence ${o.confidence}`;
}

// AI state from a status event, in three colours a surgeon reads from across the room: live (green), content the
// model does not know (amber: findings withheld), unavailable (red).
export function aiState(event) {
  if (event.ai_available) return { kind: "ok", text: event.reason ? `AI live (${event.reason})` : "AI live" };
  if (event.state === "content" || /^content /.test(event.reason)) {
    return { kind: "amber", text: `Content not recognised: ${event.reason}` };
  }
  return { kind: "down", text: `AI unavailable: ${event.reason}` };
}

// The large status word over the video (theatre mode shows it even with the panel hidden).
export class StatusBadge {
  constructor(root) { this.root = root; }
  handle(event) {
    if (event.type !== "status") return;
    const state = aiState(event);
    this.root.className = `status-badge ${state.kind}`;
    this.root.textContent = state.kind === "ok" ? "AI live" : state.kind === "amber" ? "Content not recognised" : "AI unavailable";
    this.root.title = state.text;
  }
}

// Ask the VLM about the frame on screen; the answer streams in as it is generated.
export class AskPanel {
  constructor(root, getSession) {
    this.getSession = getSession;
    this.counter = 0;
    this.current = null;
    root.innerHTML = `
      <h3>Ask about this frame</h3>
      <form data-role="form"><input data-role="question" maxlength="2000" placeholder="e.g. what do you see? where is it?" autocomplete="off">
      <button type="submit">Ask</button> <button type="button" data-role="cancel">Stop</button></form>
      <ol class="dialogue" data-role="log"></ol>
      <p class="note">AI answers are drafts from the detections and the image; they are not a diagnosis.</p>`;
    this.el = (role) => root.querySelector(`[data-role=${role}]`);
    this.el("form").onsubmit = (ev) => { ev.preventDefault(); this.ask(this.el("question").value); };
    this.el("cancel").onclick = () => {
      const s = this.getSession();
      if (s && this.current) s.channel.send(JSON.stringify({ type: "cancel", request_id: this.current.id }));
    };
  }
  ask(question) {
    const session = this.getSession();
    if (!session || session.channel.readyState !== "open") return;
    const id = `q${Date.now()}-${++this.counter}`;
    const item = document.createElement("li");
    item.innerHTML = `<div class="q"></div><div class="a" data-answer="${id}"></div>`;
    item.querySelector(".q").textContent = question;
    this.el("log").prepend(item);
    this.current = { id, answer: item.querySelector(".a") };
    session.channel.send(JSON.stringify({ type: "ask", request_id: id, question }));
    this.el("question").value = "";
  }
  handle(event) {
    if (!this.current || event.request_id !== this.current.id) return;
    const box = this.current.answer;
    if (event.type === "answer") {
      if (event.done) { box.textContent = event.text; box.classList.add("done"); box.title = `${event.model.name} ${event.model.version}, frame ${event.frame_seq}`; }
      else box.textContent += event.delta;
    } else if (event.type === "error") {
      box.textContent = `(${event.message})`;
      box.classList.add("error");
    }
  }
}

// Sign out ends this browser's session on the server too (its token stops working at once), then shows sign-in.
export function wireSignOut(button) {
  button.onclick = async () => {
    await fetch("/api/logout", { method: "POST" }).catch(() => null);
    location.assign(`/signin?next=${encodeURIComponent(location.pathname + location.search)}`);
  };
}
