// phone-agent softphone (/console/phone): a Twilio Media Streams client in the browser.
// The server hands out a call the way its voice webhook answers Twilio (flow + stream
// token); this page then does Twilio's part on the same /twilio/media endpoint: the
// microphone resampled to 8 kHz μ-law in 20 ms frames, the bot's audio through a playout
// buffer that echoes marks once played and honours `clear`, keypad digits as `dtmf`.
// What the call does shows live from the admin API, like the console's timeline.

import { encode } from "./mulaw.js";
import { MediaStreamClient } from "./media-client.js";
import { Resampler } from "./resampler.js";
import { FRAME_BYTES } from "./playout.js";
import { el } from "./dom.js";
import { TOKEN_KEY, startSignIn } from "./signin.js";
import { timeline } from "./timeline.js";

const LIVE_MS = 1000;
const api = (path) => new URL("../admin/" + path, location.href).toString();
const $ = (id) => document.getElementById(id);

// Counters of the audio path; a test (or a curious person, in the DevTools console)
// reads `window.softphone`.
function freshStats() {
  return {
    callSid: null, state: "idle", framesSent: 0, mediaBytesIn: 0, playedBytes: 0, discardedBytes: 0,
    marksIn: 0, marksEchoed: 0, marksEchoedByClear: 0, clears: 0, dtmfSent: 0,
    markEchoMs: [], // per mark played out: ms from its arrival to its echo
    markWaits: [], // per mark played out: [ms waited on the audio clock, ms of audio ahead of it]
    closeCode: null, closeReason: "", error: null,
  };
}
const state = { token: null, call: null, record: null, timer: null };
window.softphone = freshStats();

// ------------------------------------------------------------------ helpers

function setStatus(text, isError = false) {
  $("status").textContent = text || "";
  $("status").classList.toggle("error", isError);
}

class Unauthorized extends Error {}

async function request(path, options = {}) {
  const response = await fetch(api(path), {
    ...options,
    headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json" },
    cache: "no-store",
  });
  if (response.status === 401) throw new Unauthorized("That admin token was not accepted.");
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

// ------------------------------------------------------------------ sign in

async function signIn(token) {
  state.token = token;
  try {
    const data = await request("phone/flows");
    $("flow").replaceChildren(el("option", { value: "", text: "by called number" }),
      ...data.flows.map((f) => el("option", { value: f, text: f })));
    $("numbers").replaceChildren(...Object.entries(data.numbers).map(([n, f]) => el("option", { value: n, text: f })));
    $("flow").value = state.want_flow || "";
    $("from").value = state.want_from || data.default_from;
    $("to").value = state.want_to || Object.keys(data.numbers)[0] || "";
  } catch (err) {
    if (err instanceof Unauthorized) return signOut(err.message);
    return setStatus(`Could not load the flows: ${err.message}`, true);
  }
  $("login").hidden = true;
  $("logout").hidden = false;
  $("app").hidden = false;
  document.body.dataset.ready = "1";
  setStatus("Ready: pick a flow (or a called number) and press Call.");
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  $("login").hidden = false;
  $("logout").hidden = true;
  $("app").hidden = true;
  setStatus(message, Boolean(message));
}

// ------------------------------------------------------------------ the call

class PhoneCall {
  constructor(stats) {
    this.stats = stats;
    this.markArrivals = new Map(); // mark name -> performance.now() when it came in
    this.pending = new Uint8Array(0); // μ-law not yet a whole frame
  }

  /** The microphone and speaker first: no call is asked for while the browser may still refuse them. */
  async openAudio() {
    // One context at the device's rate; our own resamplers (resampler.js) go to and from 8 kHz.
    this.context = new AudioContext({ latencyHint: "interactive" });
    await this.context.audioWorklet.addModule("worklets.js");
    this.mic = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    const rate = this.context.sampleRate;
    this.downsampler = new Resampler(rate, 8000);
    this.speaker = new AudioWorkletNode(this.context, "softphone-playout",
                                        { numberOfInputs: 0, outputChannelCount: [1] });
    this.speaker.port.onmessage = (e) => this.fromSpeaker(e.data);
    this.speaker.connect(this.context.destination);
    this.capture = new AudioWorkletNode(this.context, "softphone-capture",
                                        { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1] });
    this.capture.port.onmessage = (e) => this.fromMicrophone(e.data);
    this.source = this.context.createMediaStreamSource(this.mic);
    this.source.connect(this.capture);
    // A processor is only run while connected towards the output; it writes silence there.
    this.capture.connect(this.context.destination);
    await this.context.resume();
  }

  /** Speak Twilio's side of the stream the server answered the call with. */
  async connect(answer) {
    this.client = new MediaStreamClient(
      { url: answer.stream_url, callSid: answer.call_sid, parameters: answer.parameters },
      {
        onMedia: (ulaw) => {
          this.stats.mediaBytesIn += ulaw.length;
          this.speaker.port.postMessage({ type: "media", ulaw }, [ulaw.buffer]);
        },
        onMark: (name) => {
          this.stats.marksIn += 1;
          this.markArrivals.set(name, performance.now());
          this.speaker.port.postMessage({ type: "mark", name });
        },
        onClear: () => {
          this.stats.clears += 1;
          this.speaker.port.postMessage({ type: "clear" });
        },
        onClose: (code, reason) => this.closed(code, reason),
      },
    );
    await this.client.open();
  }

  fromMicrophone(block) {
    // Twilio sends no media before `start`: what the microphone hears until then is dropped.
    if (!this.client || !this.client.isOpen) return;
    const pcm = this.downsampler.process(block);
    if (!pcm.length) return;
    const ulaw = encode(pcm);
    const joined = new Uint8Array(this.pending.length + ulaw.length);
    joined.set(this.pending);
    joined.set(ulaw, this.pending.length);
    let at = 0;
    for (; at + FRAME_BYTES <= joined.length; at += FRAME_BYTES) {
      this.client.sendMedia(joined.slice(at, at + FRAME_BYTES));
      this.stats.framesSent += 1;
    }
    this.pending = joined.slice(at);
  }

  fromSpeaker(msg) {
    if (msg.type === "mark") {
      const arrived = this.markArrivals.get(msg.name);
      this.markArrivals.delete(msg.name);
      if (arrived != null) this.stats.markEchoMs.push(Math.round(performance.now() - arrived));
      this.stats.markWaits.push([msg.waitedMs, msg.owedMs]);
      this.stats.marksEchoed += 1;
      this.client?.sendMark(msg.name);
    } else if (msg.type === "cleared") {
      // Twilio returns every pending mark at once on `clear`: their audio was dropped.
      for (const name of msg.marks) {
        this.markArrivals.delete(name);
        this.stats.marksEchoed += 1;
        this.stats.marksEchoedByClear += 1;
        this.client?.sendMark(name);
      }
    } else if (msg.type === "stats") {
      this.stats.playedBytes = msg.playedBytes;
      this.stats.discardedBytes = msg.discardedBytes;
      renderMeters();
    }
  }

  sendDigit(digit) {
    this.client.sendDtmf(digit);
    this.stats.dtmfSent += 1;
  }

  hangUp() {
    this.client?.stop();
    this.closed(1000, "caller hung up");
  }

  release() {
    this.mic?.getTracks().forEach((t) => t.stop());
    this.context?.close();
  }

  closed(code, reason) {
    if (this.ended) return;
    this.ended = true;
    this.stats.closeCode = code;
    this.stats.closeReason = reason;
    this.release();
    callEnded(code === 1000 || code === 1005 ? "" : ` (stream closed: ${code} ${reason})`);
  }
}

async function placeCall(event) {
  event.preventDefault();
  if (state.call) return;
  window.softphone = freshStats();
  const stats = window.softphone;
  $("call").disabled = true;
  setStatus("Calling…");
  try {
    state.call = new PhoneCall(stats);
    await state.call.openAudio();
    const answer = await request("phone/call", {
      method: "POST",
      body: JSON.stringify({ flow: $("flow").value, from: $("from").value.trim(), to: $("to").value.trim() }),
    });
    stats.callSid = answer.call_sid;
    $("call-title").textContent = `Call ${answer.call_sid} (${answer.flow})`;
    await state.call.connect(answer);
    stats.state = "live";
    $("hangup").disabled = false;
    setKeypad(true);
    setStatus(`In a call with flow ${answer.flow}. Speak; press Hang up to end.`);
    pollRecord();
  } catch (err) {
    stats.state = "failed";
    stats.error = err.message;
    state.call?.client?.stop();
    state.call?.release();
    state.call = null;
    $("call").disabled = false;
    if (err instanceof Unauthorized) return signOut(err.message);
    const why = err.name === "NotAllowedError"
      ? "the browser did not give this page the microphone (allow it; pages on http:// other than localhost never get it)"
      : err.message;
    setStatus(`Call failed: ${why}`, true);
  }
}

function callEnded(detail) {
  window.softphone.state = "ended";
  state.call = null;
  $("call").disabled = false;
  $("hangup").disabled = true;
  setKeypad(false);
  renderMeters();
  setStatus(`Call ended${detail}.`);
  pollRecord(); // once more after the end, then until the record is stored
}

// ------------------------------------------------------------------ live view

async function pollRecord() {
  clearTimeout(state.timer);
  const sid = window.softphone.callSid;
  if (!sid || !state.token) return;
  let data = null;
  try {
    data = await request(`calls/${encodeURIComponent(sid)}`);
    renderRecord(data);
  } catch (err) {
    if (err instanceof Unauthorized) return signOut(err.message);
  }
  // While the call lives, and after it until its record is stored.
  const stored = data && !data.live && data.record && data.record.ended_at;
  if (!stored) state.timer = setTimeout(pollRecord, LIVE_MS);
  else window.softphone.recordStored = true;
}

function renderRecord(data) {
  const record = data.record;
  if (!record) return;
  const latencies = (record.turn_latencies_ms || []).map((v) => `${Math.round(v)} ms`).join(", ");
  const facts = [
    ["State", data.live ? `live (${record.state || "in progress"})` : record.outcome],
    ["Flow", record.flow], ["Provider", record.provider],
    ["Caller", record.caller], ["Called", record.called],
    ["Turn latencies", latencies || "none yet"],
  ];
  $("call-summary").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v ?? "" })]));
  $("timeline").replaceChildren(...timeline(record).map(([t, kind, text]) =>
    el("li", { class: `ev ${kind}` }, el("span", { class: "t", text: `${t.toFixed(2)} s` }),
       el("span", { class: "kind", text: kind }), el("span", { class: "text", text }))));
}

function renderMeters() {
  const s = window.softphone;
  const facts = [
    ["Sent", `${(s.framesSent * 0.02).toFixed(1)} s (${s.framesSent} frames)`],
    ["Heard", `${(s.playedBytes / 8000).toFixed(1)} s of bot audio`],
    ["Marks", `${s.marksEchoed} of ${s.marksIn} echoed${s.marksEchoedByClear ? `, ${s.marksEchoedByClear} by clear` : ""}`],
    ["Barge-ins", `${s.clears} clear${s.clears === 1 ? "" : "s"}, ${(s.discardedBytes / 8000).toFixed(1)} s dropped`],
  ];
  $("meters").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
}

// ------------------------------------------------------------------ keypad, start

function setKeypad(enabled) {
  for (const button of $("keypad").querySelectorAll("button")) button.disabled = !enabled;
}

for (const digit of "123456789*0#") {
  $("keypad").append(el("button", { type: "button", text: digit, "data-digit": digit,
                                    onclick: () => state.call?.sendDigit(digit) }));
}
setKeypad(false);
renderMeters();
$("dial").addEventListener("submit", placeCall);
$("hangup").addEventListener("click", () => state.call?.hangUp());
window.addEventListener("beforeunload", () => state.call?.hangUp());

// `flow`, `from`, `to` in the fragment prefill the dial form.
startSignIn({ signIn, signOut, onParams: (params) => {
  for (const field of ["flow", "from", "to"]) if (params.get(field)) state[`want_${field}`] = params.get(field);
} });
