// G.711 μ-law <-> 16-bit PCM, bit for bit what the server's codec does (telephony/audio.py,
// CPython's audioop): the 14-bit encoder with its bias and clip, the 16-bit decoder.
// Pure functions on typed arrays: no DOM, so tests run them on the server's own samples.

const BIAS = 0x84;
const CLIP = 8159;
const SEG_END = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];

/** One 16-bit sample (an integer in -32768..32767) to its μ-law byte. */
export function encodeSample(sample) {
  let pcm = sample >> 2; // audioop encodes the top 14 bits
  let mask;
  if (pcm < 0) {
    pcm = -pcm;
    mask = 0x7f;
  } else {
    mask = 0xff;
  }
  if (pcm > CLIP) pcm = CLIP;
  pcm += BIAS >> 2;
  let seg = 0;
  while (seg < 8 && pcm > SEG_END[seg]) seg++;
  if (seg >= 8) return 0x7f ^ mask;
  return ((seg << 4) | ((pcm >> (seg + 1)) & 0xf)) ^ mask;
}

/** One μ-law byte to its 16-bit sample. */
export function decodeSample(byte) {
  const u = ~byte & 0xff;
  let t = ((u & 0x0f) << 3) + BIAS;
  t <<= (u & 0x70) >> 4;
  return u & 0x80 ? BIAS - t : t - BIAS;
}

const DECODE = new Int16Array(256).map((_, i) => decodeSample(i));

/** 16-bit samples (any array of numbers; rounded and clipped) to μ-law bytes. */
export function encode(samples) {
  const out = new Uint8Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    let s = Math.round(samples[i]);
    if (s > 32767) s = 32767;
    else if (s < -32768) s = -32768;
    out[i] = encodeSample(s);
  }
  return out;
}

/** μ-law bytes to 16-bit samples. */
export function decode(bytes) {
  const out = new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = DECODE[bytes[i]];
  return out;
}

/** Base64 of bytes (a media payload) and back. */
export function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
  return btoa(text);
}

export function fromBase64(text) {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}
