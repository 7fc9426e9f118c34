// The Twilio side of a Media Stream, as the browser softphone speaks it: exactly the
// messages Twilio sends (connected, start, media, dtmf, mark echoes, stop), with Twilio's
// field shapes (sequenceNumber, chunk and timestamp are decimal strings).
// The message builders are pure functions; MediaStreamClient adds the WebSocket.

import { fromBase64, toBase64 } from "./mulaw.js";

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** A Twilio-shaped sid: `prefix` + 32 hex digits. */
export function newSid(prefix) {
  return prefix + hex(crypto.getRandomValues(new Uint8Array(16)));
}

export const connectedMessage = () => ({ event: "connected", protocol: "Call", version: "1.0.0" });

export function startMessage({ seq, streamSid, accountSid, callSid, parameters }) {
  return {
    event: "start", sequenceNumber: String(seq), streamSid,
    start: {
      streamSid, accountSid, callSid, tracks: ["inbound"], customParameters: { ...parameters },
      mediaFormat: { encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1 },
    },
  };
}

export function mediaMessage({ seq, streamSid, chunk, timestampMs, ulaw }) {
  return {
    event: "media", sequenceNumber: String(seq), streamSid,
    media: { track: "inbound", chunk: String(chunk), timestamp: String(timestampMs), payload: toBase64(ulaw) },
  };
}

export const dtmfMessage = ({ seq, streamSid, digit }) => ({
  event: "dtmf", sequenceNumber: String(seq), streamSid, dtmf: { track: "inbound_track", digit },
});

export const markMessage = ({ seq, streamSid, name }) => ({
  event: "mark", sequenceNumber: String(seq), streamSid, mark: { name },
});

export const stopMessage = ({ seq, streamSid, accountSid, callSid }) => ({
  event: "stop", sequenceNumber: String(seq), streamSid, stop: { accountSid, callSid },
});

/** What the server sent, decoded: {event: "media", ulaw} | {event: "mark", name} | {event: "clear"}. */
export function parseOutbound(text) {
  const msg = JSON.parse(text);
  if (msg.event === "media") return { event: "media", ulaw: fromBase64(msg.media.payload) };
  if (msg.event === "mark") return { event: "mark", name: msg.mark.name };
  if (msg.event === "clear") return { event: "clear" };
  return { event: msg.event || "unknown" };
}

export class MediaStreamClient {
  /** `handlers`: onMedia(ulaw), onMark(name), onClear(), onClose(code, reason). */
  constructor({ url, callSid, parameters }, handlers) {
    this.url = url;
    this.callSid = callSid;
    this.parameters = parameters;
    this.accountSid = "AC" + "0".repeat(32); // no Twilio account behind a softphone
    this.streamSid = newSid("MZ");
    this.handlers = handlers;
    this.seq = 0;
    this.chunk = 0;
    this.ws = null;
    this.stopped = false;
  }

  /** Open the socket and send `connected` + `start`; resolves once they are sent. */
  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      ws.onopen = () => {
        this._send(connectedMessage());
        this._send(startMessage({ seq: ++this.seq, streamSid: this.streamSid, accountSid: this.accountSid,
                                  callSid: this.callSid, parameters: this.parameters }));
        resolve();
      };
      ws.onerror = () => reject(new Error("the media stream could not be opened"));
      ws.onmessage = (e) => this._receive(e.data);
      ws.onclose = (e) => this.handlers.onClose?.(e.code, e.reason);
    });
  }

  get isOpen() {
    return this.ws && this.ws.readyState === WebSocket.OPEN && !this.stopped;
  }

  /** One frame of caller audio (160 μ-law bytes = 20 ms); its timestamp is its place in the stream. */
  sendMedia(ulaw) {
    if (!this.isOpen) return;
    this.chunk += 1;
    this._send(mediaMessage({ seq: ++this.seq, streamSid: this.streamSid, chunk: this.chunk,
                              timestampMs: (this.chunk - 1) * 20, ulaw }));
  }

  sendDtmf(digit) {
    if (this.isOpen) this._send(dtmfMessage({ seq: ++this.seq, streamSid: this.streamSid, digit }));
  }

  sendMark(name) {
    if (this.isOpen) this._send(markMessage({ seq: ++this.seq, streamSid: this.streamSid, name }));
  }

  /** Hang up: `stop`, then close, as Twilio does when the caller hangs up. */
  stop() {
    if (this.isOpen) {
      this._send(stopMessage({ seq: ++this.seq, streamSid: this.streamSid, accountSid: this.accountSid,
                               callSid: this.callSid }));
    }
    this.stopped = true;
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, "caller hung up");
  }

  _send(message) {
    this.ws.send(JSON.stringify(message));
  }

  _receive(text) {
    const msg = parseOutbound(text);
    if (msg.event === "media") this.handlers.onMedia?.(msg.ulaw);
    else if (msg.event === "mark") this.handlers.onMark?.(msg.name);
    else if (msg.event === "clear") this.handlers.onClear?.();
  }
}
