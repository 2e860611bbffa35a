// GP case page: the bearer token lives in memory only; images load with the session cookie (GET only).
"use strict";
(() => {
  let token = null;
  let currentCase = null;
  let currentReport = null;
  let currentConsult = null;
  let callWindow = null;
  const $ = (id) => document.getElementById(id);

  function showError(message) {
    $("error").textContent = message;
    $("error").hidden = !message;
  }

  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const data = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
    if (!r.ok) throw new Error((data && data.detail) || `${r.status}`);
    return data;
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;  // textContent only: nothing from the server becomes markup
    if (cls) e.className = cls;
    return e;
  }

  const pct = (v) => `${Math.round(100 * v)}%`;

  function analysisBlock(a) {
    const box = el("div");
    if (a.status !== "analysed") {
      box.append(el("p", a.status === "pending" ? "analysis pending…" : a.reason || a.status, "muted"));
      return box;
    }
    const an = a.analysis;
    const m = an.measurement;
    box.append(el("p", m.area_cm2 != null
      ? `Area ${m.area_cm2.toFixed(2)} cm² · length ${m.length_cm.toFixed(2)} cm · width ${m.width_cm.toFixed(2)} cm`
      : m.reason.replace("not measured: no scale marker in the photo", "not measured: no scale marker"), "area"));
    if (an.tissue) {
      const t = an.tissue;
      box.append(el("p", `Tissue: granulation ${pct(t.granulation)}, slough ${pct(t.slough)}, necrotic ${pct(t.necrotic)}, unclassified ${pct(t.unclassified)}`, "tissue"));
    } else if (an.tissue_not_assessed) {
      box.append(el("p", `Tissue: ${an.tissue_not_assessed.replace("tissue mix not assessed: ", "not assessed, ")}`, "tissue"));
    }
    const risk = an.risk;
    box.append(el("p", risk.flagged ? "Risk flag: review suggested" : "Risk flag: no signal found", risk.flagged ? "flag risk" : "ok risk"));
    if (risk.signals.length) {
      const ul = el("ul");
      risk.signals.forEach((s) => ul.append(el("li", s.description)));
      box.append(ul);
    }
    if (risk.not_evaluated.length) box.append(el("p", `Not evaluated: ${risk.not_evaluated.join("; ")}`, "muted"));
    box.append(el("p", risk.note, "muted"));
    box.append(el("p", `Model: ${a.model.name} ${a.model.version}`, "muted"));
    return box;
  }

  async function loadAnalysis(photoId, tries = 20) {
    for (let i = 0; i < tries; i++) {
      const a = await api("GET", `/api/photos/${photoId}/analysis`);
      if (a.status !== "pending") return a;
      await new Promise((r) => setTimeout(r, 1000));
    }
    return { status: "pending" };
  }

  // The date a photo was taken decides its visit in the trend; the GP may correct it (the server audits the edit).
  function takenAtEditor(p) {
    const form = el("form", undefined, "taken-at");
    const label = el("label", "Taken on ");
    const input = el("input");
    input.type = "date";
    input.value = p.taken_at.slice(0, 10);
    input.max = new Date().toISOString().slice(0, 10);
    input.setAttribute("aria-label", `date photo ${p.id} was taken`);
    label.append(input);
    const save = el("button", "Save date");
    save.type = "submit";
    const status = el("span", "", "taken-at-status");
    status.setAttribute("role", "status");
    form.append(label, save, status);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api("PUT", `/api/photos/${p.id}/taken-at`, { taken_at: input.value });
        status.textContent = "saved";
        await showTrend(currentCase.id);
      } catch (err) {
        status.textContent = err.message;
      }
    });
    return form;
  }

  async function showTrend(caseId) {
    const trend = await api("GET", `/api/cases/${caseId}/trend`);
    $("trend").src = `/api/cases/${caseId}/trend.png?t=${Date.now()}`;
    const note = $("trend-note");
    if (trend.too_few_measured) {
      note.textContent = trend.too_few_measured;
    } else {
      const weekly = trend.overall_weekly_change_pct;
      const visits = trend.visits.filter((v) => v.area_cm2 !== null);
      const last = visits[visits.length - 1];
      note.textContent = `${trend.measured_visits} measured visits; last ${last.area_cm2.toFixed(2)} cm²` +
        (last.length_cm !== null ? ` (${last.length_cm.toFixed(1)} × ${last.width_cm.toFixed(1)} cm)` : "") +
        (weekly === null ? "" : `; area ${weekly < 0 ? "down" : "up"} ${Math.abs(weekly).toFixed(1)}% a week`);
    }
  }

  async function showPhotos(detail) {
    const box = $("photos");
    box.replaceChildren();
    for (const p of detail.photos) {
      const card = el("div", undefined, "photo");
      card.dataset.photoId = p.id;
      const thumb = el("img");
      thumb.src = p.thumbnail_url;
      thumb.alt = "photo thumbnail";
      card.append(thumb);
      const a = await loadAnalysis(p.id);
      const info = analysisBlock(a);
      info.prepend(el("p", `Photo ${p.id}, received ${new Date(p.received_at).toLocaleString()}`));
      info.append(takenAtEditor(p));
      card.append(info);
      const ev = el("img");
      if (a.evidence_url) {
        ev.src = a.evidence_url;
        ev.alt = "evidence image";
        ev.className = "evidence";
      }
      card.append(ev);
      box.append(card);
    }
  }

  function showReport(r) {
    currentReport = r;
    $("report").hidden = false;
    $("report-id").textContent = r.id;
    $("report-version").textContent = r.version;
    $("report-status").textContent = r.status;
    $("report-notice").textContent = r.notice || "";
    $("report-notice").hidden = !r.notice;
    $("report-text").value = r.body.text || "";
    const signed = r.status === "signed";
    $("report-text").readOnly = signed;
    $("save-btn").hidden = signed;
    $("sign-btn").hidden = signed;
    $("amend-btn").hidden = !signed;
    // The signed note names the signer and the time in the clinic's zone (written by the server when signing).
    $("signed-info").textContent = signed ? r.body.notice || `signed ${new Date(r.signed_at).toLocaleString()}` : "";
    $("signed-info").className = signed ? "signed" : "";
    $("pdf-link").href = `/api/reports/${r.id}/pdf`;
    $("fhir-link").href = `/api/reports/${r.id}/fhir`;
  }

  async function openCase(id) {
    showError("");
    const detail = await api("GET", `/api/cases/${id}`);
    currentCase = detail;
    $("case").hidden = false;
    $("case-title").textContent = `Case ${detail.id}${detail.label ? " — " + detail.label : ""}`;
    $("report").hidden = true;
    $("consult-info").hidden = true;
    await showPhotos(detail);
    await showTrend(id);
    const reports = await api("GET", `/api/cases/${id}/reports`);
    if (reports.length) showReport(reports[reports.length - 1]);
    document.body.dataset.caseLoaded = String(id);
  }

  async function listCases() {
    const cases = await api("GET", "/api/cases");
    const ul = $("cases");
    ul.replaceChildren();
    for (const c of cases) {
      const b = el("button", `Case ${c.id}${c.label ? " — " + c.label : ""}`);
      b.type = "button";
      b.dataset.caseId = c.id;
      b.addEventListener("click", () => openCase(c.id).catch((e) => showError(e.message)));
      const li = el("li");
      li.append(b);
      ul.append(li);
    }
  }

  const guarded = (fn) => () => fn().catch((e) => showError(e.message));

  $("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showError("");
    const r = await fetch("/api/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: $("email").value, password: $("password").value }),
    });
    const data = await r.json();
    if (!r.ok) return showError(data.detail || "sign-in failed");
    token = data.token;
    $("password").value = "";
    $("who").textContent = `${data.user.email} (${data.user.role})`;
    $("login").hidden = true;
    $("app").hidden = false;
    await listCases().catch((e) => showError(e.message));
  });

  $("consult-btn").addEventListener("click", guarded(async () => {
    showError("");
    currentConsult = await api("POST", `/api/cases/${currentCase.id}/consults`);
    $("patient-link").value = currentConsult.patient_url.startsWith("/")
      ? location.origin + currentConsult.patient_url : currentConsult.patient_url;
    $("consult-info").hidden = false;
    document.body.dataset.consultId = String(currentConsult.id);
  }));
  $("copy-link-btn").addEventListener("click", guarded(async () => {
    await navigator.clipboard.writeText($("patient-link").value);
  }));
  $("open-call-btn").addEventListener("click", () => {
    callWindow = window.open(currentConsult.clinician_url, `consult-${currentConsult.id}`);
  });
  // The call window asks for the session token once it has loaded; only a window this page opened gets it.
  window.addEventListener("message", (ev) => {
    if (ev.origin !== location.origin || !callWindow || ev.source !== callWindow) return;
    if (ev.data && ev.data.type === "scopecast-consult-ready") callWindow.postMessage({ type: "scopecast-token", token }, location.origin);
  });

  $("draft-btn").addEventListener("click", guarded(async () => {
    showError("");
    showReport(await api("POST", `/api/cases/${currentCase.id}/reports`));
  }));
  $("save-btn").addEventListener("click", guarded(async () => {
    showReport(await api("PUT", `/api/reports/${currentReport.id}`, { text: $("report-text").value }));
  }));
  $("sign-btn").addEventListener("click", guarded(async () => {
    await api("PUT", `/api/reports/${currentReport.id}`, { text: $("report-text").value });
    showReport(await api("POST", `/api/reports/${currentReport.id}/sign`));
  }));
  $("amend-btn").addEventListener("click", guarded(async () => {
    showReport(await api("POST", `/api/reports/${currentReport.id}/amend`));
  }));
})();
