"""Renders the bundled clips in `agent/assets/` with the offline engine's piper voice.

    python -m agent.devkit.assets_build

They are the fallback where no clip in the session's own voice exists (Gemini fillers)
and the apology a dead provider can no longer speak. Raw μ-law 8 kHz, no header.
"""

from __future__ import annotations

from agent.fillers import ASSETS, slug
from agent.flows import DEFAULT_FILLERS, DEFAULT_SECOND_FILLERS, Flow


def main() -> None:
    from agent.local.models import load_models

    synth = load_models().tts
    ASSETS.mkdir(exist_ok=True)
    clips = {slug(p): p for p in (*DEFAULT_FILLERS, *DEFAULT_SECOND_FILLERS, Flow().goodbye)}
    clips["apology"] = Flow().apology
    for name, phrase in clips.items():
        audio = synth.render(phrase, "audio/pcmu")
        (ASSETS / f"{name}.ulaw").write_bytes(audio)
        print(f"{name}.ulaw  {len(audio) / 8000:.1f} s  {phrase!r}")


if __name__ == "__main__":
    main()
