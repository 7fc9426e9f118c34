"""How `make test` lays the suite out over its xdist workers.

Two rules, both for the wall time of a run on a small machine:

- Long tests start early. Most of the suite's time is half-minute calls that mostly wait
  on real-time audio; started last, one of them alone would set the wall time. Workers
  are handed tests in collection order (`--dist load --maxschedchunk 1`: one running
  and one queued per worker), so `dispatch_order` plans that order ahead with the
  measured lengths in SLOW_S, as the workers will pull it.
- At most SPEECH_CALLS real-time calls through the offline speech engine at once
  (tests marked `speech_call`). The engine synthesises a reply sentence by sentence in
  wall time; with more of them bursting together on two cores, the next sentence can
  take longer to render than the one before it takes to play, and the emulated caller,
  who talks after 700 ms of quiet, talks over the rest of the reply. `SpeechSlots`
  enforces the cap across worker processes (a token pipe, like make's jobserver); the
  planned order keeps workers from queuing for a token.
"""

from __future__ import annotations

import heapq
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

SPEECH_CALLS = 3
SHORT_S = 0.05  # what a test not in SLOW_S is taken to last

# Seconds a test takes at real time on a 2-core VM (measured in a whole run of the suite:
# `--durations=70`), for the tests over ~2.5 s.
# A stale entry costs ordering, never a test.
SLOW_S: dict[str, float] = {
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[booking-step-by-step]": 24,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[barge-in]": 20,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[reschedule]": 29,
    "tests/test_loadtest.py::test_loadtest_against_the_fake_provider_writes_a_sane_report": 26,
    "tests/agent/test_false_interruption.py::test_a_cough_over_the_reply_resumes_it_where_it_stopped": 11,
    "tests/agent/test_false_interruption.py::test_a_real_interruption_cancels_and_truncates_at_what_was_heard": 10,
    "tests/e2e/test_barge_in_engine.py::test_a_hum_over_the_reply_does_not_lose_it": 6.6,
    "tests/e2e/test_barge_in_engine.py::test_a_real_interruption_stops_the_bot_within_150_ms": 5.5,
    "tests/agent/test_http_tools_in_calls.py::test_an_http_tool_failing_with_500_is_retried_then_spoken_and_the_call_goes_on": 4.5,
    "tests/test_flows_hooks.py::test_flows_try_performs_the_webhook_and_prints_the_resolved_flow": 3.6,
    "tests/agent/test_http_tools_in_calls.py::test_an_http_tool_answers_and_the_model_gets_its_json": 3.3,
    "tests/agent/test_http_tools_in_calls.py::test_an_http_tool_answering_plain_text_is_a_spoken_error_not_retried": 3.3,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[booking]": 14,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[cancel]": 25,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[cancel-one-of-two]": 20,
    "tests/test_wheel.py::test_a_fake_openai_load_test_runs_from_the_installed_package": 16,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[order-unknown]": 16,
    "tests/test_wheel.py::test_a_bundled_call_runs_from_the_installed_package": 18,
    "tests/ops/test_redis_outage.py::test_redis_stopped_and_restarted_mid_call": 28,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[booking-espeak-female]": 14,
    "tests/test_eval.py::test_one_whole_call": 14,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[order-dtmf]": 13,
    "tests/e2e/test_readme_backend.py::test_the_readme_backend_personalises_a_call_on_the_offline_engine": 26,
    "tests/test_types.py::test_mypy_finds_no_type_errors": 26,
    "tests/e2e/test_fixtures_e2e.py::test_a_call_made_of_real_recordings": 11,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[order-status]": 11,
    "tests/agent/test_turn_latency.py::test_the_record_says_what_the_caller_waited_on_the_offline_engine": 21,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[noisy-line]": 10,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[caller-silent]": 10,
    "tests/ops/test_console_browser.py::test_console_lists_live_and_recent_calls_and_shows_a_timeline": 17,
    "tests/ops/test_softphone_browser.py::test_a_call_from_the_browser_looks_up_an_order_and_is_barged_in_on": 19,
    "tests/ops/test_softphone_browser.py::test_the_same_page_calls_a_flow_on_the_openai_protocol": 17,
    "tests/ops/test_softphone_audio.py::test_js_resampler_agrees_with_the_server_resampler": 5.3,
    "tests/agent/test_http_tools_in_calls.py::test_a_slow_http_tool_plays_a_filler_then_the_answer": 14,
    "tests/agent/test_overload.py::test_a_lagging_server_answers_new_calls_busy_and_keeps_its_live_call": 13,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[transfer]": 6,
    "tests/agent/test_turn_latency.py::test_the_record_says_what_the_caller_waited_on_openai": 12,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[goodbye]": 6,
    "tests/agent/test_webhook_flood.py::test_forged_webhook_flood_costs_a_live_call_no_frame": 11,
    "tests/agent/test_stalled_upload.py::test_a_stalled_upload_does_not_stall_the_reply": 11,
    "tests/test_wheel.py::test_the_package_comes_from_the_wheel": 11,
    "tests/e2e/test_fixtures_e2e.py::test_fixture_end_to_end[hangup-during-tool]": 6,
    "tests/agent/test_tools_in_calls.py::test_cached_filler_clip_plays_instantly_on_the_next_call": 10,
    "tests/ops/test_drain.py::test_sigterm_turns_calls_away_and_exits_when_the_live_call_ends": 10,
    "tests/ops/test_drain.py::test_sigterm_hangs_up_calls_still_live_at_the_deadline": 10,
    "tests/agent/test_keypad_sensitive_call.py::test_sensitive_keypad_digits_reach_the_tool_and_nothing_else": 10,
    "tests/test_loadtest.py::test_max_seconds_stops_the_run_and_reports_timed_out_calls": 9,
    "tests/test_loadtest.py::test_remote_target_signs_webhooks_and_reports_what_it_cannot_see": 9,
    "tests/agent/test_stream_route.py::test_the_stream_url_names_the_instance_and_the_warm_session_is_claimed": 9,
    "tests/ops/test_console_hooks.py::test_the_console_shows_the_flow_webhook_and_http_tool_calls": 8,
    "tests/agent/test_twilio_outage.py::test_refused_transfer_and_hang_up_strand_nobody": 8,
    "tests/agent/test_call_gemini.py::test_go_away_resumes_without_the_caller_noticing": 7,
    "tests/agent/test_call_gemini.py::test_interrupted_clears_twilio_and_tool_round_trip": 7,
    "tests/agent/test_call_openai.py::test_barge_in_clears_twilio_and_truncates_at_what_was_heard": 7,
    "tests/agent/test_tools_in_calls.py::test_filler_plays_when_a_tool_outlasts_filler_after_ms_and_is_cut_on_result": 7,
    "tests/agent/test_tools_in_calls.py::test_no_filler_when_the_tool_is_fast": 7,
    "tests/telephony/test_playback.py::TestPlaybackProperties::runTest": 7,
    "tests/agent/test_tracing.py::test_a_call_is_a_trace_and_each_turn_a_span": 7,
    "tests/local/test_concurrency.py::test_four_sessions_talking_at_once": 6,
    "tests/ops/test_multi_instance.py::test_one_slot_booked_through_both_instances_at_once_is_booked_once": 6,
    "tests/agent/test_bounded_surface.py::test_a_tool_the_model_made_up_is_unknown_on_metrics": 6,
    "tests/ops/test_serve_guards.py::test_serve_refuses_to_start_open_or_misconfigured": 6,
    "tests/agent/test_call_openai.py::test_provider_disconnect_apologises_and_leaves_other_calls_alone": 5,
    "tests/telephony/test_protocol.py::test_structured_garbage_only_ever_raises_protocol_error": 5,
    "tests/agent/test_silence.py::test_a_silent_caller_on_the_offline_engine": 5,
    "tests/ops/test_behind_nginx.py::test_without_stream_routes_warmed_sessions_are_wasted": 5,
    "tests/ops/test_flow_resolution_instances.py::test_the_instance_holding_the_stream_gets_the_webhook_s_flow_from_redis": 5,
    "tests/ops/test_serve_guards.py::test_unsigned_webhooks_are_for_localhost_and_say_so": 5,
    "tests/agent/test_call_openai.py::test_audio_both_ways_and_a_function_call_round_trip": 4,
    "tests/agent/test_observability.py::test_metrics_health_and_readiness_after_a_call": 4,
    "tests/agent/test_tools_in_calls.py::test_tool_exception_becomes_a_spoken_recovery_and_the_call_goes_on": 4,
    "tests/ops/test_redis_outage.py::test_a_frozen_redis_costs_seconds_not_forever": 4,
    "tests/agent/test_http_tools_in_calls.py::test_an_http_tool_answers_on_gemini": 4,
    "tests/ops/test_caller_data.py::test_admin_api_deletes_a_callers_data_on_a_real_server[redis]": 4,
    "tests/ops/test_behind_nginx.py::test_signed_calls_reach_the_instance_that_answered_and_waste_no_session": 4,
    "tests/ops/test_caller_data.py::test_admin_api_deletes_a_callers_data_on_a_real_server[sqlite]": 4,
    "tests/agent/test_http_tools_in_calls.py::test_arguments_that_do_not_fit_the_schema_go_back_to_the_model_unsent": 4,
    "tests/agent/test_silence.py::test_a_silent_caller_on_gemini": 4,
    "tests/agent/test_tools_in_calls.py::test_background_tool_result_arrives_on_gemini_non_blocking": 3,
    "tests/agent/test_tools_in_calls.py::test_background_tool_result_arrives_on_openai": 3,
    "tests/agent/test_tools_in_calls.py::test_tool_timeout_becomes_a_spoken_recovery": 3,
    "tests/test_fixtures.py::test_render_one_line_with_piper": 3,
    "tests/ops/test_flow_resolution_instances.py::test_a_resolution_lost_on_the_way_leaves_the_static_flow_and_says_so": 3,
}

T = TypeVar("T")


def expected_s(nodeid: str) -> float:
    return SLOW_S.get(nodeid, SHORT_S)


def dispatch_order(
    items: Sequence[T], nodeid: Callable[[T], str], is_speech: Callable[[T], bool],
    workers: int, speech_calls: int = SPEECH_CALLS,
) -> list[T]:
    """`items` in the order to hand them to `workers` workers: each pick is the longest
    test left, a speech call only while fewer than `speech_calls` would be running when
    it starts. Simulates xdist's load scheduling: two tests per worker to begin with,
    then one more each time a worker finishes one (queued behind the one it holds)."""
    speech = sorted((i for i in items if is_speech(i)), key=lambda i: -expected_s(nodeid(i)))
    others = sorted((i for i in items if not is_speech(i)), key=lambda i: -expected_s(nodeid(i)))
    order: list[T] = []
    planned: list[tuple[float, float]] = []  # speech calls handed out: (start, end)
    tail = [0.0] * workers  # when each worker's last queued test ends
    done: list[tuple[float, int]] = []  # (a test on that worker ends, worker)

    def fits(start: float, end: float) -> bool:
        """Fewer than `speech_calls` planned calls at every moment of [start, end)."""
        moments = [start] + [s for s, _ in planned if start < s < end]
        return all(sum(1 for s, e in planned if s <= t < e) < speech_calls for t in moments)

    def hand_out(worker: int) -> None:
        start = tail[worker]
        if speech and (not others or fits(start, start + expected_s(nodeid(speech[0])))):
            item = speech.pop(0)
            length = expected_s(nodeid(item))
            # Nothing else left to run: the worker waits for a slot to come free.
            start = min(t for t in [start] + [e for _, e in planned if e > start]
                        if fits(t, t + length))
            planned.append((start, start + length))
        else:
            item = others.pop(0)
        order.append(item)
        tail[worker] = start + expected_s(nodeid(item))
        heapq.heappush(done, (tail[worker], worker))

    for worker in range(workers):
        for _ in range(2):
            if speech or others:
                hand_out(worker)
    while speech or others:
        _, worker = heapq.heappop(done)
        hand_out(worker)
    return order


class SpeechSlots:
    """A counting semaphore shared by the workers: a named pipe holding one byte per free
    slot. Taking a slot reads a byte (blocking until one is there), giving it back
    writes one. The controller creates it; workers open it by path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @classmethod
    def create(cls, count: int) -> SpeechSlots:
        path = Path(tempfile.mkdtemp(prefix="phone-agent-speech-slots-")) / "slots"
        os.mkfifo(path)
        slots = cls(path)
        os.write(slots._open(), b"+" * count)  # the controller keeps it open: bytes stay
        return slots

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR)  # read-write: opening never blocks
        return self._fd

    def acquire(self) -> None:
        os.read(self._open(), 1)

    def release(self) -> None:
        os.write(self._open(), b"+")

    def remove(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        shutil.rmtree(self.path.parent, ignore_errors=True)
