// The phone's side of bot audio: a playout buffer with Twilio's mark semantics, the same
// object as the Python emulator's (telephony/testing/playout.py), driven here by the
// audio clock of an AudioWorklet instead of the emulator's media clock.
//
// Twilio queues the audio a server sends and plays it in real time. A `mark` is echoed
// once all audio queued before it has finished playing; `clear` drops what is still
// queued and echoes every pending mark at once. One 20 ms frame per tick(); no clock, no
// socket, no DOM, so tests run the same scenarios through both and compare.

export const FRAME_BYTES = 160; // 20 ms of 8 kHz μ-law

export class Playout {
  constructor(frameBytes = FRAME_BYTES) {
    this.frameBytes = frameBytes;
    this.chunks = []; // [audio (Uint8Array), owner, arrived]; `first` is the head index
    this.first = 0;
    this.head = 0; // bytes already played from chunks[first]
    this.marks = []; // {name, offset, receivedAt, owner}; `firstMark` is the head index
    this.firstMark = 0;
    this.queuedBytes = 0;
    this.tail = 0; // position of the end of the queue on the played timeline
    this.playedBytes = 0;
    this.discardedBytes = 0;
    this.busy = false; // the frame taken by the last tick is still playing
  }

  get queuedMs() {
    return this.queuedBytes / 8;
  }

  get pendingMarks() {
    return this.marks.length - this.firstMark;
  }

  /** Queue audio that arrived at `at`. */
  push(audio, owner = null, at = -Infinity) {
    if (audio.length) {
      this.chunks.push([audio, owner, at]);
      this.queuedBytes += audio.length;
      this.tail += audio.length;
    }
  }

  /** Queue a mark; returns it when it is already due (nothing left to play), else null. */
  addMark(name, receivedAt = 0, owner = null) {
    const mark = { name, offset: this.tail, receivedAt, owner };
    if (!this.queuedBytes && !this.busy && !this.pendingMarks) return mark;
    this.marks.push(mark);
    return null;
  }

  /** Advance one frame slot starting at `at`: finish the previous frame, then start
   * playing the next from audio that had arrived by then.
   * Returns {finishedMarks, audio (Uint8Array), shares: [[owner, bytes]]}. */
  tick(at = Infinity) {
    if (!this.queuedBytes && !this.pendingMarks) {
      this.busy = false;
      return { finishedMarks: [], audio: new Uint8Array(0), shares: [] };
    }
    const finishedMarks = [];
    while (this.pendingMarks && this.marks[this.firstMark].offset <= this.playedBytes) {
      finishedMarks.push(this.marks[this.firstMark++]);
    }
    let need = this.frameBytes;
    const parts = [];
    const shares = [];
    while (need && this.first < this.chunks.length) {
      const [data, owner, arrived] = this.chunks[this.first];
      if (arrived > at) break;
      const start = this.head;
      const avail = data.length - start;
      let part;
      if (avail <= need) {
        part = data.subarray(start);
        this.first++;
        this.head = 0;
      } else {
        part = data.subarray(start, start + need);
        this.head = start + need;
      }
      parts.push(part);
      shares.push([owner, part.length]);
      need -= part.length;
    }
    this._compact();
    let size = 0;
    for (const p of parts) size += p.length;
    const audio = new Uint8Array(size);
    let offset = 0;
    for (const p of parts) {
      audio.set(p, offset);
      offset += p.length;
    }
    this.queuedBytes -= size;
    this.playedBytes += size;
    this.busy = size > 0;
    return { finishedMarks, audio, shares };
  }

  /** Drop all unplayed audio; returns {marks: every pending mark, dropped: [[owner, bytes]]}. */
  clear() {
    const dropped = [];
    let head = this.head;
    for (let i = this.first; i < this.chunks.length; i++) {
      const [data, owner] = this.chunks[i];
      dropped.push([owner, data.length - head]);
      head = 0;
    }
    this.chunks = [];
    this.first = 0;
    this.head = 0;
    this.discardedBytes += this.queuedBytes;
    // Dropped audio never plays: keep the cumulative offsets consistent with played.
    this.tail -= this.queuedBytes;
    this.queuedBytes = 0;
    const marks = this.marks.slice(this.firstMark);
    this.marks = [];
    this.firstMark = 0;
    return { marks, dropped };
  }

  _compact() {
    // Arrays used as queues: drop the consumed front now and then, not on every shift.
    if (this.first > 64) {
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
    if (this.firstMark > 64) {
      this.marks = this.marks.slice(this.firstMark);
      this.firstMark = 0;
    }
  }
}
