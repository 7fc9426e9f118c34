"""Suite-wide ordering: the longest tests first.

`make test` runs the suite on several xdist workers that are handed one test at a time
(`--dist load --maxschedchunk 1`), in collection order. Started first, the calls that
last half a minute run side by side while the short tests fill the gaps between them;
started last, one of them alone would set the suite's wall time.
"""

from __future__ import annotations

import pytest

# Seconds a test takes at real time on a 2-core VM (measured), for the tests over ~3 s.
# Anything not listed counts as short. A stale entry costs ordering, never a test.
SLOW_S: dict[str, float] = {
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[booking-step-by-step]": 38,
    "tests/test_loadtest.py::test_loadtest_against_the_fake_provider_writes_a_sane_report": 38,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[cancel]": 35,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[reschedule]": 35,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[booking-espeak-female]": 29,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[booking]": 28,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[order-unknown]": 28,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[barge-in]": 25,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[order-dtmf]": 24,
    "tests/e2e/test_fixtures_e2e.py::test_a_call_made_of_real_recordings": 21,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[order-status]": 21,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[noisy-line]": 18,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[caller-silent]": 17,
    "tests/agent/test_overload.py::test_a_lagging_server_answers_new_calls_busy_and_keeps_its_live_call": 14,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[hangup-during-tool]": 13,
    "tests/ops/test_console_browser.py::test_console_lists_live_and_recent_calls_and_shows_a_timeline": 12,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[transfer]": 11,
    "tests/agent/test_tools_in_calls.py::test_cached_filler_clip_plays_instantly_on_the_next_call": 10,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[goodbye]": 10,
    "tests/test_loadtest.py::test_max_seconds_stops_the_run_and_reports_timed_out_calls": 10,
    "tests/ops/test_drain.py::test_sigterm_turns_calls_away_and_exits_when_the_live_call_ends": 9,
    "tests/agent/test_call_gemini.py::test_go_away_resumes_without_the_caller_noticing": 7,
    "tests/agent/test_call_gemini.py::test_interrupted_clears_twilio_and_tool_round_trip": 7,
    "tests/agent/test_call_openai.py::test_barge_in_clears_twilio_and_truncates_at_what_was_heard": 7,
    "tests/agent/test_tools_in_calls.py::test_filler_plays_when_a_tool_outlasts_filler_after_ms_and_is_cut_on_result": 7,
    "tests/agent/test_tools_in_calls.py::test_no_filler_when_the_tool_is_fast": 7,
    "tests/ops/test_drain.py::test_sigterm_hangs_up_calls_still_live_at_the_deadline": 7,
    "tests/test_loadtest.py::test_remote_target_signs_webhooks_and_reports_what_it_cannot_see": 7,
    "tests/agent/test_call_openai.py::test_audio_both_ways_and_a_function_call_round_trip": 4,
    "tests/agent/test_call_openai.py::test_provider_disconnect_apologises_and_leaves_other_calls_alone": 4,
    "tests/agent/test_observability.py::test_metrics_health_and_readiness_after_a_call": 4,
    "tests/telephony/test_protocol.py::test_structured_garbage_only_ever_raises_protocol_error": 4,
    "tests/agent/test_tools_in_calls.py::test_background_tool_result_arrives_on_gemini_non_blocking": 3,
    "tests/agent/test_tools_in_calls.py::test_background_tool_result_arrives_on_openai": 3,
    "tests/agent/test_tools_in_calls.py::test_tool_exception_becomes_a_spoken_recovery_and_the_call_goes_on": 3,
    "tests/agent/test_tools_in_calls.py::test_tool_timeout_becomes_a_spoken_recovery": 3,
    "tests/local/test_concurrency.py::test_four_sessions_talking_at_once": 3,
    "tests/ops/test_multi_instance.py::test_one_slot_booked_through_both_instances_at_once_is_booked_once": 3,
    "tests/telephony/test_playback.py::TestPlaybackProperties::runTest": 3,
    "tests/test_fixtures.py::test_render_one_line_with_piper": 3,
}


def expected_s(nodeid: str) -> float:
    return SLOW_S.get(nodeid, 0.0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Stable: equal estimates keep their collection order (every worker must agree).
    items.sort(key=lambda item: -expected_s(item.nodeid))
