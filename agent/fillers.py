"""Filler and apology clips, kept as raw μ-law 8 kHz so they play straight into Twilio.

A filler is preferably a clip in the session's own voice: rendered once per
provider+voice+phrase (captured from the model's out-of-band response the first time),
kept in memory and in the store (shared by all instances), then played instantly.
Bundled clips (rendered with the offline engine's voice, shipped in `agent/assets/`) are
the fallback where a provider cannot render out-of-band (Gemini) and for the apology a
dead provider can no longer speak.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ASSETS = Path(__file__).with_name("assets")
MAX_CLIP_BYTES = 8000 * 8  # 8 s: a filler is one short line


def slug(phrase: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", phrase.lower()).strip("-")
    return words[:48] or "clip"


def bundled_clip(phrase: str) -> bytes | None:
    path = ASSETS / f"{slug(phrase)}.ulaw"
    return path.read_bytes() if path.is_file() else None


class FillerCache:
    def __init__(self, store: Any = None) -> None:
        self._store = store  # tools.store.Store or None
        self._memory: dict[str, bytes] = {}

    @staticmethod
    def _key(voice_key: str, phrase: str) -> str:
        digest = hashlib.sha256(f"{voice_key}\n{phrase}".encode()).hexdigest()[:24]
        return f"filler:{digest}"

    async def get(self, voice_key: str, phrase: str, *, allow_generic: bool = False) -> bytes | None:
        key = self._key(voice_key, phrase)
        clip = self._memory.get(key)
        if clip is None and self._store is not None:
            try:
                clip = await self._store.get_blob(key)
            except Exception:
                log.warning("filler cache: store read failed", exc_info=True)
            if clip:
                self._memory[key] = clip
        if clip is None and allow_generic:
            clip = bundled_clip(phrase)
        return clip

    async def store(self, voice_key: str, phrase: str, clip: bytes) -> None:
        if not clip or len(clip) > MAX_CLIP_BYTES:
            return
        key = self._key(voice_key, phrase)
        self._memory[key] = clip
        if self._store is not None:
            try:
                await self._store.put_blob(key, clip)
            except Exception:
                log.warning("filler cache: store write failed", exc_info=True)

    async def apology(self, phrase: str) -> bytes | None:
        return bundled_clip(phrase) or bundled_clip("apology")
