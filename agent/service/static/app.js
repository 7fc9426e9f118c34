// phone-agent console: live and recent calls, one call's timeline, hang-up.
// No framework, no build step. Every value from the server goes in via textContent:
// transcripts are what callers said, and must never become markup.
import { el } from "./dom.js";
import { TOKEN_KEY, startSignIn } from "./signin.js";
import { timeline } from "./timeline.js";

const REFRESH_MS = 2000;
const api = (path) => new URL("../admin/" + path, location.href).toString();

const state = { token: null, selected: null, live: new Set(), timer: null };
const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ helpers

const shortSid = (sid) => (sid && sid.length > 14 ? sid.slice(0, 6) + "…" + sid.slice(-6) : sid || "");
const clock = (unix) => (unix ? new Date(unix * 1000).toLocaleTimeString() : "");
const seconds = (s) => (s == null ? "" : s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);
const ms = (v) => (v == null ? "" : `${Math.round(v)} ms`);

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text || "";
  status.classList.toggle("error", isError);
}

class Unauthorized extends Error {}

async function call(path, options = {}) {
  const response = await fetch(api(path), {
    ...options,
    headers: { Authorization: `Bearer ${state.token}` },
    cache: "no-store",
  });
  if (response.status === 401) throw new Unauthorized("That admin token was not accepted.");
  const body = await response.json().catch(() => ({}));
  if (!response.ok && response.status !== 202) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

// ------------------------------------------------------------------ sign in / out

function signIn(token) {
  state.token = token;
  $("login").hidden = true;
  $("logout").hidden = false;
  $("app").hidden = false;
  refresh();
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(state.timer);
  Object.assign(state, { token: null, selected: null, timer: null });
  $("login").hidden = false;
  $("logout").hidden = true;
  $("app").hidden = true;
  $("instance").textContent = "";
  setStatus(message, Boolean(message));
}

// ------------------------------------------------------------------ refresh loop

async function refresh() {
  clearTimeout(state.timer);
  if (!state.token) return;
  try {
    const data = await call(`calls?limit=50`);
    renderLists(data);
    if (state.selected) renderDetail(await call(`calls/${encodeURIComponent(state.selected)}`));
    setStatus(`Updated ${new Date().toLocaleTimeString()}`);
  } catch (err) {
    if (err instanceof Unauthorized) return signOut(err.message);
    setStatus(`Could not refresh: ${err.message}`, true);
  }
  // Chained, not setInterval: a slow server never gets overlapping refreshes.
  state.timer = setTimeout(refresh, REFRESH_MS);
}

function select(sid) {
  state.selected = sid;
  refresh();
}

// ------------------------------------------------------------------ call lists

function renderLists(data) {
  $("instance").textContent = `instance ${data.instance}${data.draining ? " (draining)" : ""}`;
  state.live = new Set(data.live.map((c) => c.call_sid));
  const now = Date.now() / 1000;

  const liveRows = data.live.map((c) =>
    row(c.call_sid, [
      shortSid(c.call_sid), c.flow, c.caller, seconds(now - c.started_at),
      c.state || "", c.local ? `${c.instance} (this)` : c.instance,
      el("button", { type: "button", class: "danger small", text: "Hang up",
                     onclick: (e) => { e.stopPropagation(); hangUp(c.call_sid); } }),
    ]));
  fill("live", liveRows, "No live calls.");
  $("live-count").textContent = String(data.live.length);

  const recentRows = data.recent.map((c) =>
    row(c.call_sid, [
      shortSid(c.call_sid), c.flow, c.caller, clock(c.started_at), seconds(c.duration_s),
      el("span", { class: `outcome ${c.outcome}`, text: c.outcome }), c.turns, ms(c.avg_latency_ms),
    ]));
  fill("recent", recentRows, "No calls yet.");
  $("recent-count").textContent = String(data.recent.length);
}

function row(sid, cells) {
  const tr = el("tr", { "data-sid": sid, title: sid, onclick: () => select(sid) },
                ...cells.map((c) => el("td", {}, c)));
  if (sid === state.selected) tr.classList.add("selected");
  return tr;
}

function fill(tableId, rows, empty) {
  const body = $(tableId).querySelector("tbody");
  const columns = $(tableId).querySelectorAll("thead th").length;
  body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: columns, class: "muted", text: empty }))]));
}

// ------------------------------------------------------------------ one call

function renderDetail(data) {
  const record = data.record;
  $("detail").hidden = false;
  $("detail-title").textContent = `Call ${state.selected}`;
  $("hangup").hidden = !data.live;
  if (!record) {
    $("detail-summary").replaceChildren(el("dt", { text: "Live on" }), el("dd", { text: data.instance }));
    $("timeline").replaceChildren();
    return;
  }
  const duration = (record.ended_at || Date.now() / 1000) - record.started_at;
  const facts = [
    ["Outcome", data.live ? `live (${record.state || "in progress"})` : record.outcome],
    ["Flow", record.flow], ["Provider", record.provider],
    ["Caller", record.caller], ["Called", record.called],
    ["Started", clock(record.started_at)], ["Duration", seconds(duration)],
    ["First audio", record.first_audio_at == null ? "" : seconds(record.first_audio_at)],
    ["Turn latencies", (record.turn_latencies_ms || []).map((v) => ms(v)).join(", ") || "none"],
    ["Instance", data.instance || "(stored record)"],
  ];
  $("detail-summary").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v ?? "" })]));
  $("timeline").replaceChildren(...timeline(record).map(([t, kind, text]) =>
    el("li", { class: `ev ${kind}` }, el("span", { class: "t", text: `${t.toFixed(2)} s` }),
       el("span", { class: "kind", text: kind }), el("span", { class: "text", text }))));
}

async function hangUp(sid) {
  if (!confirm(`Hang up call ${sid}?`)) return;
  try {
    const result = await call(`calls/${encodeURIComponent(sid)}/hangup`, { method: "POST" });
    setStatus(result.ended ? `Call ended (${result.outcome}).` : "Hang-up sent; waiting for the call to end.");
  } catch (err) {
    if (err instanceof Unauthorized) return signOut(err.message);
    setStatus(`Hang-up failed: ${err.message}`, true);
  }
  refresh();
}

// ------------------------------------------------------------------ start

$("hangup").addEventListener("click", () => state.selected && hangUp(state.selected));

// `&call=CA...` in the fragment opens that call.
startSignIn({ signIn, signOut, onParams: (params) => {
  if (params.get("call")) state.selected = params.get("call");
} });
