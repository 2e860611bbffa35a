// Watching a stream through Janus: the VideoRoom subscriber side, with janus.js from Debian's libjs-janus-gateway
// (served by scopecast at /vendor/janus.js, loaded only when Janus is in use). The findings, status and answer
// events arrive on the room's data channel: scopecast publishes them there with the video, in the same schema as the
// direct path's "events" channel.

function loadJanus() {
  if (window.Janus) return Promise.resolve(window.Janus);
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/vendor/janus.js";
    script.onload = () => (window.Janus ? resolve(window.Janus) : reject(new Error("janus.js did not load")));
    script.onerror = () => reject(new Error("janus.js is not installed on this server"));
    document.head.append(script);
  });
}

// janus.js asks webrtc-adapter which browser runs it; that answer is all it uses, so no adapter is shipped.
function browserDetails() {
  const ua = navigator.userAgent;
  const browser = /firefox/i.test(ua) ? "firefox" : /safari/i.test(ua) && !/chrom/i.test(ua) ? "safari" : "chrome";
  const version = ua.match(/(?:Chrome|Chromium|Firefox|Version)\/(\d+)/);
  return { browserDetails: { browser, version: version ? Number(version[1]) : 0 } };
}

function explain(cause) {
  const text = typeof cause === "string" ? cause : (cause && (cause.message || cause.reason)) || String(cause);
  if (/unauthorized|token/i.test(text)) return "Janus token expired or unknown: press Watch for a new one";
  if (/no such room/i.test(text)) return "the Janus room no longer exists";
  if (/lost connection|websocket|probably down/i.test(text)) return `Janus unreachable (${text})`;
  return text;
}

// `info` is the reply of GET /api/streams/{id}/janus (url, token, room, feed). Resolves once video arrives with
// { remote, channel, close() } (channel: closed, questions and the overlay switch need the direct path); rejects with
// an Error naming the problem. `onEnd(reason)` reports a stream that stops later.
export async function watchThroughJanus({ info, ice, onEvent, onEnd, timeoutMs = 15000 }) {
  const Janus = await loadJanus();
  await new Promise((resolve) => Janus.init({
    debug: false, dependencies: Janus.useDefaultDependencies({ adapter: browserDetails() }), callback: resolve,
  }));
  let janus = null;
  let handle = null;
  let ended = false;
  const end = (reason) => { if (!ended) { ended = true; onEnd && onEnd(explain(reason)); } };
  const remote = new Promise((resolve, reject) => {
    const fail = (cause) => { reject(new Error(explain(cause))); end(cause); };
    setTimeout(() => fail(`no video from Janus within ${timeoutMs / 1000} s`), timeoutMs);
    janus = new Janus({
      server: info.url, token: info.token, iceServers: ice.iceServers, iceTransportPolicy: ice.iceTransportPolicy,
      success: () => janus.attach({
        plugin: "janus.plugin.videoroom",
        success: (attached) => {
          handle = attached;
          const join = { request: "join", ptype: "subscriber", room: info.room, streams: [{ feed: info.feed }] };
          handle.send({ message: join, error: fail });
        },
        error: fail,
        onmessage: (message, jsep) => {
          if (message.error) { fail(message.error); return; }
          if (message.videoroom === "destroyed") { end("the Janus room no longer exists"); return; }
          if (!jsep) return;
          handle.createAnswer({
            jsep, tracks: [{ type: "data" }],
            success: (answer) => handle.send({ message: { request: "start", room: info.room }, jsep: answer, error: fail }),
            error: fail,
          });
        },
        onremotetrack: (track, _mid, on) => { if (on && track.kind === "video") resolve(new MediaStream([track])); },
        ondata: (data) => { try { onEvent(JSON.parse(data)); } catch (e) { console.warn("bad event", e); } },
        oncleanup: () => end("Janus ended the stream"),
      }),
      error: fail,
      destroyed: () => end("the Janus session ended"),
    });
  });
  try {
    const stream = await remote;
    return { remote: stream, channel: { readyState: "closed", send() {} }, via: "janus",
             close() { ended = true; janus.destroy({ cleanupHandles: true }); } };
  } catch (e) {
    ended = true;
    if (janus) janus.destroy({ cleanupHandles: true });
    throw e;
  }
}
