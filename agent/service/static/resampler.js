// A streaming sample-rate converter: windowed-sinc (Kaiser) band-limited interpolation at
// any rational ratio, carrying its history across chunks like the server's soxr streams
// (telephony/audio.py): resampling each 20 ms frame on its own would click at every edge.
// Pure (no DOM, no Web Audio), so it runs in the page, in an AudioWorklet and in tests.

const ZERO_CROSSINGS = 24; // kernel half-width, in zero crossings of the sinc
const TABLE_STEPS = 512; // kernel table resolution per zero crossing (linear interpolation)
const BETA = 8.6; // Kaiser window shape: ~85 dB stopband
const ROLLOFF = 0.97; // pass band, as a share of the lower rate's Nyquist frequency

function besselI0(x) {
  let sum = 1;
  let term = 1;
  for (let k = 1; k < 50; k++) {
    term *= (x / (2 * k)) * (x / (2 * k));
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

let sharedTable = null;

function kernelTable() {
  // sinc(u) * kaiser(u / ZERO_CROSSINGS) for u in [0, ZERO_CROSSINGS], one extra point.
  if (sharedTable) return sharedTable;
  const n = ZERO_CROSSINGS * TABLE_STEPS;
  const table = new Float64Array(n + 2);
  const norm = besselI0(BETA);
  for (let i = 0; i <= n; i++) {
    const u = i / TABLE_STEPS;
    const r = u / ZERO_CROSSINGS;
    const sinc = i === 0 ? 1 : Math.sin(Math.PI * u) / (Math.PI * u);
    table[i] = (sinc * besselI0(BETA * Math.sqrt(Math.max(0, 1 - r * r)))) / norm;
  }
  sharedTable = table;
  return table;
}

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

export class Resampler {
  /** Converts a stream of samples (numbers, any scale) from inRate to outRate (Hz). */
  constructor(inRate, outRate) {
    if (!(inRate > 0 && outRate > 0) || !Number.isInteger(inRate) || !Number.isInteger(outRate)) {
      throw new Error(`sample rates must be positive integers, got ${inRate} -> ${outRate}`);
    }
    const g = gcd(inRate, outRate);
    this.inRate = inRate;
    this.outRate = outRate;
    this.up = outRate / g; // output steps per input step: exact rational position
    this.down = inRate / g;
    this.cutoff = Math.min(1, outRate / inRate) * ROLLOFF; // of the input's Nyquist
    this.halfWidth = ZERO_CROSSINGS / this.cutoff; // kernel half-length, input samples
    this.table = kernelTable();
    this.reset();
  }

  /** Forget history (e.g. after `clear` drops the rest of an utterance). */
  reset() {
    // Output n sits at input position n * inRate / outRate: `centre` is its whole part
    // (an index into `buffer`), `phase / up` its fraction. Nothing before the first input
    // sample: the kernel is cut there, as if the stream had been silent.
    this.buffer = new Float64Array(4096);
    this.length = 0;
    this.centre = 0;
    this.phase = 0;
  }

  /** Output samples for a chunk of input; a Float64Array, possibly empty. */
  process(input) {
    this._append(input);
    const out = [];
    const reach = Math.ceil(this.halfWidth);
    // Produce while the kernel's right edge is inside the buffered input.
    while (this.centre + reach < this.length) {
      out.push(this._at(this.centre, this.phase / this.up));
      this.phase += this.down;
      this.centre += Math.floor(this.phase / this.up);
      this.phase %= this.up;
    }
    this._compact(reach);
    return Float64Array.from(out);
  }

  _at(centre, frac) {
    // y(t) = cutoff * sum_k x[k] * h((t - k) * cutoff), t = centre + frac
    const { table, cutoff, buffer } = this;
    const reach = Math.ceil(this.halfWidth);
    let sum = 0;
    const first = Math.max(0, centre - reach + 1);
    const last = Math.min(this.length - 1, centre + reach);
    for (let k = first; k <= last; k++) {
      const u = Math.abs(centre + frac - k) * cutoff;
      if (u >= ZERO_CROSSINGS) continue;
      const pos = u * TABLE_STEPS;
      const i = Math.floor(pos);
      const w = pos - i;
      sum += buffer[k] * (table[i] + (table[i + 1] - table[i]) * w);
    }
    return sum * cutoff;
  }

  _append(input) {
    const need = this.length + input.length;
    if (need > this.buffer.length) {
      const grown = new Float64Array(Math.max(need, this.buffer.length * 2));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    for (let i = 0; i < input.length; i++) this.buffer[this.length + i] = input[i];
    this.length = need;
  }

  _compact(reach) {
    // Keep what the next outputs' kernels still reach back to.
    const keepFrom = this.centre - reach;
    if (keepFrom > 4096) {
      this.buffer.copyWithin(0, keepFrom, this.length);
      this.length -= keepFrom;
      this.centre -= keepFrom;
    }
  }
}
