// GP page: patients, their wound cases, photos with analysis, trend, consults and reports.
// Signed in by the HttpOnly session cookie (so a reload keeps the session); every write carries the session's
// CSRF token, read from /api/session. The location (#patient=ID or #case=ID) survives a reload too.
"use strict";
(() => {
  let csrf = null;
  let currentPatient = null;
  let currentCase = null;
  let currentReport = null;
  let currentConsult = null;
  let editingPatientId = null;
  let events = null;
  let routeSeq = 0;  // a newer navigation wins: a slower earlier one must not show its view over it
  const $ = (id) => document.getElementById(id);
  const VIEWS = ["patient-form-view", "patient-view", "case", "welcome"];
  const TYPE_NAMES = {
    diabetic_foot_ulcer: "diabetic foot ulcer", venous_leg_ulcer: "venous leg ulcer", arterial_ulcer: "arterial ulcer",
    pressure_injury: "pressure injury", surgical_wound: "surgical wound", traumatic_wound: "traumatic wound",
    burn: "burn", other: "other wound",
  };
  const ID_NAMES = { mrn: "MRN", nhs_number: "NHS number" };

  function showError(message) {
    $("error").textContent = message;
    $("error").hidden = !message;
  }

  function formError(id, message) {
    $(id).textContent = message || "";
    $(id).hidden = !message;
  }

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  // FastAPI's validation errors are a list; show each field and its message, not "[object Object]".
  function detailText(detail, status) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    return `${status}`;
  }

  async function api(method, path, body) {
    const headers = {};
    if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const data = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
    if (r.status === 401) signedOut(detailText(data && data.detail, r.status));
    if (!r.ok) throw new ApiError(r.status, detailText(data && data.detail, r.status));
    return data;
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;  // textContent only: nothing from the server becomes markup
    if (cls) e.className = cls;
    return e;
  }

  function show(view) {
    VIEWS.forEach((v) => { $(v).hidden = v !== view; });
  }

  const pct = (v) => `${Math.round(100 * v)}%`;
  const day = (iso) => (iso ? new Date(`${iso.slice(0, 10)}T12:00:00Z`).toLocaleDateString(undefined, { dateStyle: "medium" }) : "");
  const nameOf = (p) => p.full_name || `Unnamed patient (record ${p.id})`;
  const caseName = (c) => `${c.label || "site not given"}${c.wound_type ? ", " + TYPE_NAMES[c.wound_type] : ""}`;

  function identityLine(p) {
    if (!p.full_name) return "No details recorded yet.";
    return `Born ${day(p.birth_date)} · ${ID_NAMES[p.identifier_kind] || "ID"} ${p.identifier_value}` +
      (p.has_account ? " · uses the patient app" : " · not yet invited to the app");
  }

  // -- session ----------------------------------------------------------------------------------------------

  function showWho(user) {
    $("who").textContent = `${user.display_name ? user.display_name + " · " : ""}${user.email} (${user.role})`;
  }

  function signedOut(reason) {
    csrf = null;
    if (events) { events.close(); events = null; }
    $("app").hidden = true;
    $("signout-btn").hidden = true;
    $("profile").hidden = true;
    $("who").textContent = "";
    $("signin-view").hidden = false;
    if (reason) showError(reason);
  }

  async function signedIn(session) {
    csrf = session.csrf_token;
    showWho(session.user);
    $("display-name").value = session.user.display_name || "";
    $("profile").hidden = false;
    $("signout-btn").hidden = false;
    $("signin-view").hidden = true;
    $("app").hidden = false;
    await listPatients();
    await route();
  }

  // -- patients ---------------------------------------------------------------------------------------------

  function trendText(p) {
    if (p.latest_photo_id === null) return "no photos yet";
    const area = p.latest_area_cm2 !== null ? `${p.latest_area_cm2.toFixed(1)} cm²` : (p.latest_area_reason || "not measured");
    if (!p.trend) return `${area} · ${p.trend_note || ""}`;
    const arrow = { smaller: "↓", larger: "↑", stable: "→" }[p.trend.direction];
    const change = `${p.trend.change_pct > 0 ? "+" : ""}${p.trend.change_pct.toFixed(0)}%`;
    return `${area} ${arrow} ${p.trend.direction} (${change} since ${day(p.trend.since)})`;
  }

  async function listPatients() {
    const patients = await api("GET", "/api/patients");
    const ul = $("patients");
    ul.replaceChildren();
    $("patients-empty").hidden = patients.length > 0;
    for (const p of patients) {
      const b = el("button", undefined, "patient-item");
      b.type = "button";
      b.dataset.patientId = p.id;
      if (p.latest_thumbnail_url) {
        const img = el("img");
        img.src = p.latest_thumbnail_url;
        img.alt = "";  // decorative: the text says what it is
        b.append(img);
      }
      const text = el("span");
      text.append(el("strong", nameOf(p)), el("br"), el("span", trendText(p), `trend ${p.trend ? p.trend.direction : "none"}`));
      b.append(text);
      b.addEventListener("click", () => { location.hash = `patient=${p.id}`; });
      const li = el("li");
      li.append(b);
      ul.append(li);
    }
    return patients;
  }

  function openPatientForm(patient) {
    editingPatientId = patient ? patient.id : null;
    $("patient-form-title").textContent = patient ? `Details of ${nameOf(patient)}` : "Add patient";
    $("pf-name").value = patient?.full_name || "";
    $("pf-birth").value = patient?.birth_date || "";
    $("pf-birth").max = new Date().toISOString().slice(0, 10);
    $("pf-kind").value = patient?.identifier_kind || "mrn";
    $("pf-value").value = patient?.identifier_value || "";
    formError("pf-error", "");
    show("patient-form-view");
    $("pf-name").focus();
  }

  async function openPatient(id, seq = routeSeq) {
    showError("");
    const p = await api("GET", `/api/patients/${id}`);
    const summary = (await api("GET", "/api/patients")).find((s) => s.id === id);
    if (seq !== routeSeq) return;
    currentPatient = p;
    $("patient-name").textContent = nameOf(p);
    $("patient-facts").textContent = identityLine(p);
    $("patient-missing").hidden = Boolean(p.full_name);
    $("edit-patient-btn").hidden = !p.full_name;
    $("invite-result").hidden = true;
    $("cf-onset").max = new Date().toISOString().slice(0, 10);
    if (p.birth_date) $("cf-onset").min = p.birth_date;
    const cases = summary ? summary.cases : [];
    const ul = $("cases");
    ul.replaceChildren();
    $("cases-empty").hidden = cases.length > 0;
    for (const c of cases) {
      const b = el("button", `${caseName(c)}${c.onset_date ? " · since " + day(c.onset_date) : ""}`);
      b.type = "button";
      b.dataset.caseId = c.id;
      b.addEventListener("click", () => { location.hash = `case=${c.id}`; });
      const li = el("li");
      li.append(b);
      ul.append(li);
    }
    show("patient-view");
    document.body.dataset.patientLoaded = String(id);
  }

  // -- case -------------------------------------------------------------------------------------------------

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

  // The date a photo was taken decides its visit in the trend; the GP may correct it (the server audits the edit).
  function takenAtEditor(p) {
    const form = el("form", undefined, "taken-at");
    const label = el("label", "Taken on ");
    const input = el("input");
    input.type = "date";
    input.value = p.taken_at.slice(0, 10);
    input.max = new Date().toISOString().slice(0, 10);
    if (currentPatient?.birth_date) input.min = currentPatient.birth_date;
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
    document.body.dataset.trendVisits = String(trend.visits.length);
  }

  async function photoCard(p) {
    const card = el("div", undefined, "photo");
    card.dataset.photoId = p.id;
    const thumb = el("img");
    thumb.src = p.thumbnail_url;
    thumb.alt = `photo taken ${day(p.taken_at)}`;
    card.append(thumb);
    const a = await api("GET", `/api/photos/${p.id}/analysis`);
    card.dataset.analysis = a.status;
    const info = analysisBlock(a);
    const source = p.source === "consult_capture" ? "captured in a consult" : "sent by the patient";
    info.prepend(el("p", `Photo ${p.id}, ${source}, received ${new Date(p.received_at).toLocaleString()}`));
    info.append(takenAtEditor(p));
    card.append(info);
    if (a.evidence_url) {
      const ev = el("img");
      ev.src = a.evidence_url;
      ev.alt = `wound outline found by the model on photo ${p.id}`;
      ev.className = "evidence";
      card.append(ev);
    }
    card.append(similarPanel(p));
    return card;
  }

  // "Similar cases": the nearest earlier photos of other cases (the server applies who may see what); a result of
  // another clinician's patient comes de-identified, with relative dates only.
  function similarPanel(p) {
    const wrap = el("div", undefined, "similar");
    const button = el("button", "Similar cases", "similar-btn");
    button.type = "button";
    const panel = el("section", undefined, "similar-panel");
    panel.id = `similar-${p.id}`;
    panel.hidden = true;
    panel.setAttribute("aria-labelledby", `similar-title-${p.id}`);
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-controls", panel.id);
    const title = el("h4", `Similar earlier cases to photo ${p.id}`);
    title.id = `similar-title-${p.id}`;
    const status = el("p", "", "similar-status");
    status.setAttribute("role", "status");
    const list = el("ol", undefined, "similar-list");
    panel.append(title, status, list);
    button.addEventListener("click", async () => {
      const open = panel.hidden;
      panel.hidden = !open;
      button.setAttribute("aria-expanded", String(open));
      if (!open) return;
      status.textContent = "Looking for similar cases…";
      list.replaceChildren();
      try {
        const r = await api("GET", `/api/photos/${p.id}/similar?k=5`);
        panel.dataset.status = r.status;
        status.textContent = r.message || `${r.results.length} similar case${r.results.length === 1 ? "" : "s"}`
          + (r.clinic_wide ? " from the whole clinic (other clinicians' patients de-identified)" : " among your patients");
        list.replaceChildren(...r.results.map(similarItem));
      } catch (e) {
        status.textContent = `Similar cases could not be shown: ${e.message}`;
      }
    });
    wrap.append(button, panel);
    return wrap;
  }

  function similarItem(x) {
    const li = el("li", undefined, "similar-case");
    const img = el("img");
    img.src = x.thumbnail_url;
    img.alt = x.identified
      ? `similar wound, ${x.wound_site || "site not given"}, ${day(x.visit_date)}`
      : `similar wound of another clinician's patient, ${x.days_before_query} days before this photo`;
    const text = el("div");
    const when = x.identified
      ? `${day(x.visit_date)} (${x.days_before_query} days earlier)`
      : `${x.days_before_query} days before this photo, day ${x.day_of_case} of its case`;
    const head = el("p", `${when} · ${x.wound_site || "site withheld"}${x.wound_type ? ", " + TYPE_NAMES[x.wound_type] : ""}`);
    if (!x.identified) head.prepend(el("span", "de-identified", "badge"), " ");
    const m = x.measurements;
    const size = m == null ? "not analysed"
      : m.area_cm2 != null ? `Area ${m.area_cm2.toFixed(2)} cm² · ${m.length_cm.toFixed(2)} × ${m.width_cm.toFixed(2)} cm`
      : (m.reason || "not measured");
    const o = x.outcome;
    const weekly = o.weekly_area_change_pct == null ? "" : ` · ${o.weekly_area_change_pct.toFixed(1)}% area a week`;
    text.append(
      head,
      el("p", size, "similar-size"),
      el("p", `Outcome: ${o.summary}${weekly}`, "similar-outcome"),
      el("p", `Similarity ${x.score.toFixed(2)} (1 is the same image)`, "similar-score"),
    );
    li.append(img, text);
    return li;
  }

  async function showPhotos(detail) {
    const cards = [];
    for (const p of [...detail.photos].reverse()) cards.push(await photoCard(p));  // newest first
    $("photos").replaceChildren(...cards);
    $("photos-empty").hidden = detail.photos.length > 0;
    document.body.dataset.photoCount = String(detail.photos.length);
    // An analysis still running: the event stream says when it is stored.
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

  async function refreshCase(id) {
    const detail = await api("GET", `/api/cases/${id}`);
    currentCase = detail;
    await showPhotos(detail);
    await showTrend(id);
    return detail;
  }

  function watchCase(id) {
    if (events) events.close();
    events = new EventSource(`/api/cases/${id}/events`);
    events.addEventListener("ready", () => { $("live-status").textContent = "Live: new photos appear here as they arrive."; });
    events.addEventListener("changed", () => {
      refreshCase(id).then(() => {
        document.body.dataset.caseRefreshes = String(Number(document.body.dataset.caseRefreshes || 0) + 1);
      }).catch((e) => showError(e.message));
    });
    events.addEventListener("ended", (ev) => {
      events.close();
      events = null;
      $("live-status").textContent = `Live updates stopped: ${JSON.parse(ev.data).reason}`;
    });
    events.onerror = () => { $("live-status").textContent = "Reconnecting for live updates…"; };
  }

  async function openCase(id, seq = routeSeq) {
    showError("");
    const detail = await api("GET", `/api/cases/${id}`);
    const patient = currentPatient && currentPatient.id === detail.patient_id
      ? currentPatient : await api("GET", `/api/patients/${detail.patient_id}`);
    if (seq !== routeSeq) return;
    currentPatient = patient;
    $("case-title").textContent = `${nameOf(currentPatient)} — ${caseName(detail)}`;
    $("report").hidden = true;
    $("consult-info").hidden = true;
    show("case");
    await refreshCase(id);
    const reports = await api("GET", `/api/cases/${id}/reports`);
    if (seq !== routeSeq) return;
    if (reports.length) showReport(reports[reports.length - 1]);
    watchCase(id);
    document.body.dataset.caseLoaded = String(id);
  }

  // -- routing: #patient=ID, #case=ID, #new-patient ------------------------------------------------------------

  async function route() {
    const seq = ++routeSeq;
    const [key, value] = location.hash.slice(1).split("=");
    const id = Number(value);
    if (events) { events.close(); events = null; }
    try {
      if (key === "patient" && id > 0) await openPatient(id, seq);
      else if (key === "case" && id > 0) await openCase(id, seq);
      else if (key === "new-patient") openPatientForm(null);
      else show("welcome");
    } catch (e) {
      showError(e.message);
      show("welcome");
    }
  }
  window.addEventListener("hashchange", () => { if (csrf) route(); });

  const guarded = (fn) => () => fn().catch((e) => showError(e.message));

  // -- forms and buttons ---------------------------------------------------------------------------------------

  $("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showError("");
    const r = await fetch("/api/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: $("email").value, password: $("password").value }),
    });
    const data = await r.json();
    if (!r.ok) return showError(detailText(data.detail, r.status) || "sign-in failed");
    $("password").value = "";
    await signedIn({ user: data.user, csrf_token: data.csrf_token }).catch((e) => showError(e.message));
  });

  $("signout-btn").addEventListener("click", guarded(async () => {
    await fetch("/api/logout", { method: "POST" });
    signedOut("");
    showError("You are signed out.");
  }));

  $("profile-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const user = await api("PUT", "/api/me", { display_name: $("display-name").value });
      showWho(user);
      $("profile-status").textContent = user.display_name ? "saved: reports will be signed by this name" : "cleared: reports show your email";
    } catch (e) {
      $("profile-status").textContent = e.message;
    }
  });

  $("new-patient-btn").addEventListener("click", () => { location.hash = "new-patient"; });
  $("pf-cancel").addEventListener("click", () => { history.back(); });
  $("edit-patient-btn").addEventListener("click", () => openPatientForm(currentPatient));
  $("fill-details-btn").addEventListener("click", () => openPatientForm(currentPatient));

  $("patient-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    formError("pf-error", "");
    const body = {
      full_name: $("pf-name").value, birth_date: $("pf-birth").value,
      identifier_kind: $("pf-kind").value, identifier_value: $("pf-value").value,
    };
    try {
      const saved = editingPatientId === null
        ? await api("POST", "/api/patients", body)
        : await api("PUT", `/api/patients/${editingPatientId}`, body);
      await listPatients();
      if (location.hash === `#patient=${saved.id}`) await openPatient(saved.id);
      else location.hash = `patient=${saved.id}`;
    } catch (e) {
      formError("pf-error", e.message);
    }
  });

  $("invite-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showError("");
    try {
      const invite = await api("POST", `/api/patients/${currentPatient.id}/invites`, { email: $("invite-email").value });
      const url = invite.invite_url.startsWith("/") ? location.origin + invite.invite_url : invite.invite_url;
      $("invite-link").value = url;
      $("invite-qr").src = invite.qr_svg_data_url;
      $("invite-expires").textContent = new Date(invite.expires_at).toLocaleString();
      $("invite-copied").textContent = "";
      $("invite-result").hidden = false;
    } catch (e) {
      showError(e.message);
    }
  });
  $("copy-invite-btn").addEventListener("click", guarded(async () => {
    await navigator.clipboard.writeText($("invite-link").value);
    $("invite-copied").textContent = "copied";
  }));

  $("case-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    formError("cf-error", "");
    try {
      const made = await api("POST", "/api/cases", {
        patient_id: currentPatient.id, label: $("cf-site").value, wound_type: $("cf-type").value,
        onset_date: $("cf-onset").value || null,
      });
      $("cf-site").value = "";
      $("cf-onset").value = "";
      location.hash = `case=${made.id}`;
    } catch (e) {
      formError("cf-error", e.message);
    }
  });

  $("back-to-patient-btn").addEventListener("click", () => { location.hash = `patient=${currentCase.patient_id}`; });

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
  // The call window signs in with the same session cookie and asks the server for a join ticket of its own.
  $("open-call-btn").addEventListener("click", () => {
    window.open(currentConsult.clinician_url, `consult-${currentConsult.id}`);
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

  // A reload finds the session by its cookie; without one, the sign-in form.
  fetch("/api/session").then(async (r) => {
    if (r.ok) await signedIn(await r.json());
    else signedOut("");
    document.body.dataset.ready = "1";
  }).catch(() => { signedOut("The server did not answer; reload to try again."); });
})();
