// The softphone's two AudioWorklet processors (loaded with audioWorklet.addModule):
//
// - "softphone-capture": hands the microphone to the page in 20 ms blocks at the
//   context's rate (the page resamples to 8 kHz and encodes μ-law, off the audio thread).
// - "softphone-playout": the phone's speaker. Bot audio and marks go into a Playout
//   (Twilio's mark semantics); the audio clock takes one 20 ms frame whenever the last one
//   has been rendered, so a mark is echoed only once the audio before it has played, and
//   `clear` drops everything unplayed at once, returning the pending marks.

import { decode } from "./mulaw.js";
import { Playout } from "./playout.js";
import { Resampler } from "./resampler.js";

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.size = Math.round(sampleRate / 50);
    this.block = new Float32Array(this.size);
    this.filled = 0;
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (input) {
      for (let i = 0; i < input.length; i++) {
        this.block[this.filled++] = input[i] * 32767;
        if (this.filled === this.size) {
          this.port.postMessage(this.block, [this.block.buffer]); // detaches this.block
          this.block = new Float32Array(this.size);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

class PlayoutProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.playout = new Playout();
    this.upsampler = new Resampler(8000, sampleRate);
    this.fifo = new Float32Array(0); // the frame being rendered, at the context's rate
    this.fifoAt = 0;
    this.nextReport = 0;
    this.owed = new Map(); // pending mark name -> ms of audio ahead of it when it came
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(msg) {
    if (msg.type === "media") {
      this.playout.push(msg.ulaw);
    } else if (msg.type === "mark") {
      // What the caller still has to hear before this mark: queued audio and the rest of
      // the frame being rendered. Reported with the echo, so a test can tell it waited.
      const owedMs = this.playout.queuedBytes / 8 + ((this.fifo.length - this.fifoAt) / sampleRate) * 1000;
      const due = this.playout.addMark(msg.name, currentTime);
      if (due) this.echo(due, owedMs);
      else this.owed.set(msg.name, owedMs);
    } else if (msg.type === "clear") {
      const rendering = this.fifo.length - this.fifoAt; // the rest of the current frame goes too
      const { marks, dropped } = this.playout.clear();
      this.owed.clear();
      this.fifo = new Float32Array(0);
      this.fifoAt = 0;
      this.upsampler.reset();
      this.playout.busy = false;
      let droppedBytes = 0;
      for (const [, n] of dropped) droppedBytes += n;
      this.port.postMessage({ type: "cleared", marks: marks.map((m) => m.name), droppedBytes,
                              droppedSamples: rendering });
    }
  }

  echo(mark, owedMs = null) {
    const waitedMs = (currentTime - mark.receivedAt) * 1000;
    this.port.postMessage({ type: "mark", name: mark.name, waitedMs, owedMs: owedMs ?? this.owed.get(mark.name) });
    this.owed.delete(mark.name);
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    let i = 0;
    while (i < out.length) {
      if (this.fifoAt >= this.fifo.length) {
        // The previous frame is rendered: its marks are due, and the next frame starts.
        const { finishedMarks, audio } = this.playout.tick();
        for (const mark of finishedMarks) this.echo(mark);
        if (!audio.length) break;
        const pcm = this.upsampler.process(decode(audio));
        this.fifo = Float32Array.from(pcm, (v) => v / 32768);
        this.fifoAt = 0;
        if (!this.fifo.length) continue;
      }
      const n = Math.min(out.length - i, this.fifo.length - this.fifoAt);
      out.set(this.fifo.subarray(this.fifoAt, this.fifoAt + n), i);
      this.fifoAt += n;
      i += n;
    }
    out.fill(0, i);
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (currentTime >= this.nextReport) {
      this.nextReport = currentTime + 0.1;
      this.port.postMessage({ type: "stats", playedBytes: this.playout.playedBytes,
                              queuedBytes: this.playout.queuedBytes, discardedBytes: this.playout.discardedBytes });
    }
    return true;
  }
}

registerProcessor("softphone-capture", CaptureProcessor);
registerProcessor("softphone-playout", PlayoutProcessor);
