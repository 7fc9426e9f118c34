"""flows.yaml: validation with line numbers, routing by number and ?flow=."""

from __future__ import annotations

import pytest

from agent.cli import main
from agent.flows import DEFAULT_FLOWS_FILE, FlowsError, load_flows, parse_flows
from agent.service.sessions import make_session
from agent.service.settings import Settings


def test_example_flows_file_is_valid() -> None:
    flows = load_flows(DEFAULT_FLOWS_FILE)
    assert {"appointment-desk", "order-status"} <= set(flows.flows)
    assert flows.choose("+15550002000", None).name == "order-status"
    assert flows.choose("+19999999999", None).name == "appointment-desk"  # default
    assert flows.choose("+15550002000", "appointment-desk").name == "appointment-desk"
    assert flows.choose(None, "nope") is None


BAD = """\
flows:
  desk:
    provider: openia
    filler_after_ms: -5
    tools: [book_appointment, no_such_tool]
    transfer_number: "555"
numbers:
  "+15550001000": missing
default_flow: desk
"""


def test_every_problem_is_reported_with_line_and_field() -> None:
    with pytest.raises(FlowsError) as info:
        parse_flows(BAD, "bad.yaml")
    text = "\n".join(str(p) for p in info.value.problems)
    assert "line 3: flows.desk.provider" in text
    assert "line 4: flows.desk.filler_after_ms" in text
    assert "line 6: flows.desk.transfer_number" in text


LISTENING = """\
flows:
  noisy:
    provider: openai
    turn_detection: semantic_vad
    vad_eagerness: low
    noise_reduction: far_field
  gem:
    provider: gemini
    turn_detection: semantic_vad
  loud:
    vad_threshold: 1.5
    vad_silence_ms: 20
"""


def test_listening_settings_are_checked_and_reach_the_session() -> None:
    with pytest.raises(FlowsError) as info:
        parse_flows(LISTENING, "listening.yaml")
    text = "\n".join(str(p) for p in info.value.problems)
    assert "flows.gem" in text and "semantic_vad is OpenAI's" in text
    assert "line 11: flows.loud.vad_threshold" in text
    assert "line 12: flows.loud.vad_silence_ms" in text
    good = LISTENING.split("  gem:")[0]
    flow = parse_flows(good, "good.yaml").flows["noisy"]
    session = make_session(flow, (), Settings())
    config = session.config  # type: ignore[attr-defined]
    assert (config.turn_detection, config.vad_eagerness, config.noise_reduction) == (
        "semantic_vad", "low", "far_field")


def test_unknown_tool_and_flow_reference(tmp_path) -> None:
    text = BAD.replace("provider: openia", "provider: openai").replace("-5", "700")
    text = text.replace('"555"', '"+15551234567"')
    with pytest.raises(FlowsError) as info:
        parse_flows(text, "bad.yaml")
    text_out = "\n".join(str(p) for p in info.value.problems)
    assert "line 5: flows.desk.tools.1" in text_out and "no_such_tool" in text_out
    assert "line 8: numbers.+15550001000: unknown flow 'missing'" in text_out


def test_yaml_syntax_error_has_a_line() -> None:
    with pytest.raises(FlowsError) as info:
        parse_flows("flows:\n  a: [1,\n", "x.yaml")
    assert info.value.problems[0].line is not None


def test_user_tool_by_import_path() -> None:
    flows = parse_flows("flows:\n  a:\n    tools: ['tests.user_tools:shout']\n")
    assert flows.flows["a"].tools == ["tests.user_tools:shout"]


def test_cli_flows_check(tmp_path, capsys) -> None:
    bad = tmp_path / "flows.yaml"
    bad.write_text(BAD)
    assert main(["flows", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "line 3" in err and "provider" in err
    assert main(["flows", "check", str(DEFAULT_FLOWS_FILE)]) == 0

