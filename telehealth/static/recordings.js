// The case's recording consent and recordings on the GP page: consent taken and withdrawn, the list (date,
// duration, who started it, size), and a player that draws the findings track over the video, each drawing
// registered to the frame on screen by requestVideoFrameCallback's mediaTime (currentTime where that is missing).
// It follows gp.js by the case it marks loaded (body[data-case-loaded]) and reads its own session for the CSRF token.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  let session = null;
  let caseId = null;
  let activeConsent = null;
  let track = [];  // findings lines of the recording playing, sorted by t
  let frameCallback = null;
  const PURPOSES = { clinical_record: "clinical record", teaching: "teaching", research: "research" };

  async function api(method, path, body) {
    const headers = {};
    if (method !== "GET" && session) headers["X-CSRF-Token"] = session.csrf_token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const data = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
    if (!r.ok) {
      const detail = data && data.detail;
      throw new Error(typeof detail === "string" ? detail : `request failed (${r.status})`);
    }
    return data;
  }

  function el(tag, text) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;  // nothing from the server becomes markup
    return e;
  }

  const duration = (s) => (s == null ? "—" : `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, "0")}`);
  const size = (b) => (b == null ? "—" : b >= 1e6 ? `${(b / 1e6).toFixed(1)} MB` : `${Math.round(b / 1e3)} kB`);
  const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });

  async function load(id) {
    caseId = id;
    if (!session) session = await api("GET", "/api/session");
    const [consents, recordings] = await Promise.all([
      api("GET", `/api/cases/${id}/recording-consents`),
      api("GET", `/api/cases/${id}/recordings`),
    ]);
    if (id !== caseId) return;
    showConsent(consents);
    showRecordings(recordings);
    document.body.dataset.recordingsLoaded = String(id);
  }

  function showConsent(consents) {
    activeConsent = [...consents].reverse().find((c) => c.active) || null;
    const c = activeConsent;
    $("consent-state").textContent = c
      ? `Recording consent in force: ${PURPOSES[c.purpose]}, given by ${c.consented_by} on ${when(c.consented_at)}; `
        + `covers patient video ${c.patient_video ? "yes" : "no"}, patient audio ${c.patient_audio ? "yes" : "no"}.`
      : "No recording consent: this case cannot be recorded.";
    $("withdraw-consent-btn").hidden = !c;
  }

  function showRecordings(recordings) {
    const body = $("recordings-body");
    body.replaceChildren();
    $("recordings-empty").hidden = recordings.length > 0;
    $("recordings").hidden = recordings.length === 0;
    for (const r of recordings) {
      const row = el("tr");
      row.dataset.recordingId = String(r.id);
      const state = r.state === "ended_early" ? `ended early: ${r.end_reason}` : r.state;
      for (const text of [when(r.started_at), duration(r.duration_s), r.started_by_name, size(r.size_bytes), state]) {
        row.append(el("td", text));
      }
      const actions = el("td");
      if (r.state !== "recording") {
        const play = el("button", "Play");
        play.type = "button";
        play.className = "play-recording";
        play.addEventListener("click", () => playRecording(r).catch(showError));
        actions.append(play);
      }
      if (session.user.role === "admin" && r.state !== "recording") {
        const del = el("button", "Delete");
        del.type = "button";
        del.addEventListener("click", () => remove(r).catch(showError));
        actions.append(del);
      }
      row.append(actions);
      body.append(row);
    }
  }

  function showError(e) {
    $("consent-error").textContent = e.message;
    $("consent-error").hidden = false;
  }

  async function remove(r) {
    if (!confirm(`Delete the recording of ${when(r.started_at)}? This cannot be undone.`)) return;
    await api("DELETE", `/api/recordings/${r.id}`);
    await load(caseId);
  }

  // -- the player ------------------------------------------------------------------------------------------

  async function playRecording(r) {
    const response = await fetch(r.findings_url);
    if (!response.ok) throw new Error(`the findings track could not be read (${response.status})`);
    track = (await response.text()).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l))
      .sort((a, b) => a.t - b.t);
    const video = $("rec-video");
    video.src = r.video_url;
    $("player").hidden = false;
    document.body.dataset.overlayDraws = "0";
    watchFrames(video);
    await video.play().catch(() => {});  // autoplay may be refused: the controls remain
  }

  // The newest findings line at or before media time `t` (binary search over the sorted track).
  function lineAt(t) {
    let lo = 0, hi = track.length - 1, found = null;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (track[mid].t <= t + 0.0005) { found = track[mid]; lo = mid + 1; } else hi = mid - 1;
    }
    return found;
  }

  function watchFrames(video) {
    if (frameCallback !== null && "cancelVideoFrameCallback" in video) video.cancelVideoFrameCallback(frameCallback);
    if ("requestVideoFrameCallback" in video) {
      const onFrame = (_now, meta) => { draw(video, meta.mediaTime); frameCallback = video.requestVideoFrameCallback(onFrame); };
      frameCallback = video.requestVideoFrameCallback(onFrame);
    } else {
      video.ontimeupdate = () => draw(video, video.currentTime);
    }
  }

  function draw(video, mediaTime) {
    const canvas = $("rec-overlay");
    const w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) return;
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    const line = lineAt(mediaTime);
    // Findings older than a second describe another moment: show nothing rather than something stale.
    const fresh = line && mediaTime - line.t <= 1.0;
    $("rec-findings").textContent = fresh
      ? (line.event.objects.map((o) => `${o.name || o.label} (${o.confidence || "score " + o.score}, ${o.where})`).join("; ")
        || "No findings on this frame")
      : "";
    document.body.dataset.overlayTime = String(mediaTime);
    if (!fresh || !$("rec-overlay-on").checked) return;
    const [fw, fh] = line.event.frame_size;
    const sx = w / fw, sy = h / fh;
    ctx.lineWidth = Math.max(2, w / 320);
    ctx.strokeStyle = "#00e5ff";
    ctx.fillStyle = "#00e5ff";
    ctx.font = `${Math.max(12, Math.round(h / 30))}px sans-serif`;
    for (const o of line.event.objects) {
      const [x0, y0, x1, y1] = o.box;
      ctx.strokeRect(x0 * sx, y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy);
      ctx.fillText(o.name || o.label, x0 * sx, Math.max(12, y0 * sy - 4));
    }
    if (line.event.objects.length) {
      document.body.dataset.overlayDraws = String(Number(document.body.dataset.overlayDraws || 0) + 1);
    }
  }

  // -- consent ---------------------------------------------------------------------------------------------

  $("consent-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    $("consent-error").hidden = true;
    const representative = $("consent-representative").value.trim();
    api("POST", `/api/cases/${caseId}/recording-consents`, {
      purpose: $("consent-purpose").value,
      patient_video: $("consent-video").checked,
      patient_audio: $("consent-audio").checked,
      representative_name: representative || null,
    }).then(() => load(caseId)).catch(showError);
  });

  $("withdraw-consent-btn").addEventListener("click", () => {
    if (!activeConsent) return;
    api("POST", `/api/cases/${caseId}/recording-consents/${activeConsent.id}/withdraw`)
      .then(() => load(caseId)).catch(showError);
  });

  // gp.js marks each case it opens (again on each reopening, which refreshes the list); follow it.
  new MutationObserver(() => {
    const id = Number(document.body.dataset.caseLoaded);
    if (id > 0) {
      $("player").hidden = true;
      $("rec-video").removeAttribute("src");
      load(id).catch(showError);
    }
  }).observe(document.body, { attributes: true, attributeFilter: ["data-case-loaded"] });
})();
