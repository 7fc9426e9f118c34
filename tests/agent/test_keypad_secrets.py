"""`keypad: sensitive` pieces without a call: references in, secrets scrubbed out, and
the flow setting as `phone-agent flows check` sees it."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main
from agent.flows import FlowsError, parse_flows
from agent.keypad_secrets import KeypadSecrets, masked, model_text
from tools.registry import ToolArgumentError


def test_references_become_digits_only_for_the_tool() -> None:
    keys = KeypadSecrets()
    assert keys.add("907153") == "keypad:1"
    assert keys.add("4111111111111111") == "keypad:2"
    args = {"pin": "keypad:1", "card": {"number": "`keypad:2`"}, "n": 3, "list": ["keypad:1"]}
    resolved, secret = keys.resolve("pay", args)
    assert resolved == {"pin": "907153", "card": {"number": "`4111111111111111`"}, "n": 3,
                        "list": ["907153"]}
    assert secret is True
    assert args["pin"] == "keypad:1"  # the model's arguments, as recorded, are untouched
    assert keys.resolve("pay", {"pin": "1234"}) == ({"pin": "1234"}, False)


def test_a_made_up_reference_is_an_argument_error_the_model_can_fix() -> None:
    keys = KeypadSecrets()
    with pytest.raises(ToolArgumentError, match="unknown keypad reference 'keypad:1'; the caller has typed: nothing yet"):
        keys.resolve("pay", {"pin": "keypad:1"})
    keys.add("1234")
    with pytest.raises(ToolArgumentError, match=r"'keypad:3'; the caller has typed: keypad:1$"):
        keys.resolve("pay", {"pin": "keypad:3"})


def test_results_are_scrubbed_back_to_references() -> None:
    keys = KeypadSecrets()
    keys.add("907153")
    keys.add("12")
    result = {"echo": "907153", "note": "PIN 907153 checked at 12:00", "as_int": 907153,
              "longer": "19071530", "short": "12", "ok": True, "list": ["x907153y"]}
    assert keys.scrub(result) == {
        "echo": "keypad:1", "note": "PIN keypad:1 checked at 12:00", "as_int": "keypad:1",
        # Another number that merely contains the digits is left alone...
        "longer": "19071530",
        # ...two-digit secrets only as a whole value (inside text they'd match times)...
        "short": "keypad:2",
        "ok": True, "list": ["xkeypad:1y"],
    }
    assert KeypadSecrets().scrub(result) is result  # nothing typed: nothing to do


def test_what_the_model_and_the_record_see() -> None:
    assert model_text("keypad:1", "907153") == (
        "(The caller typed 6 digits on the keypad; they are secret: "
        "pass the value `keypad:1` to a tool that needs them)")
    assert masked("907153") == "******"


SENSITIVE = """\
flows:
  bank:
    provider: openai
    keypad: sensitive
    tools: [tests.agent.secret_tools:check_pin, end_call]
"""


def test_flows_accept_and_check_the_keypad_setting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_flows(SENSITIVE).get("bank").keypad == "sensitive"
    assert parse_flows("flows: {desk: {}}").get("desk").keypad == "normal"

    good = tmp_path / "good.yaml"
    good.write_text(SENSITIVE)
    assert main(["flows", "check", str(good)]) == 0
    assert "bank: openai, tools: tests.agent.secret_tools:check_pin, end_call, keypad: sensitive" in capsys.readouterr().out

    typo = tmp_path / "typo.yaml"
    typo.write_text("flows:\n  a:\n    keypad: secret\n")
    assert main(["flows", "check", str(typo)]) == 1
    assert "line 3: flows.a.keypad: Input should be 'normal' or 'sensitive'" in capsys.readouterr().err

    useless = tmp_path / "useless.yaml"
    useless.write_text(
        "flows:\n"
        "  b:\n    keypad: sensitive\n    tools: [end_call]\n"
        "  c:\n    provider: local\n    tools: [lookup_order]\n    keypad: sensitive\n"
    )
    assert main(["flows", "check", str(useless)]) == 1
    err = capsys.readouterr().err
    assert "line 3: flows.b.keypad: sensitive keypad digits reach only tools" in err
    assert "line 8: flows.c.keypad: the offline engine does not pass keypad references" in err
    with pytest.raises(FlowsError):
        parse_flows(useless.read_text())
