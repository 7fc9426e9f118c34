"""The README stays the newcomer's reference: every setting is in its table."""

from __future__ import annotations

from pathlib import Path

from agent.service.settings import Settings

README = Path(__file__).parents[1] / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text()
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in text]
    assert missing == [], f"add these to the README's Settings table: {missing}"
