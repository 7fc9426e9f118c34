// A call record as a timeline: transcript lines of both sides and the call's events
// (tool calls with arguments, results and durations, fillers, barge-ins, keypad, ...).
// Shared by the console and the softphone; returns text only (the pages set textContent).

const ms = (v) => (v == null ? "" : `${Math.round(v)} ms`);
const json = (v) => (v === undefined ? "" : JSON.stringify(v));

/** [[seconds into the call, kind, text], ...] in time order. */
export function timeline(record) {
  const items = (record.transcript_lines || []).map((l) => [l.t, l.role === "caller" ? "caller" : "bot", l.text]);
  for (const e of record.events || []) items.push([e.t, e.kind, describe(e)]);
  items.sort((a, b) => a[0] - b[0]);
  if (record.ended_at) items.push([record.ended_at - record.started_at, "end", `call ended: ${record.outcome}`]);
  return items;
}

export function describe(e) {
  switch (e.kind) {
    case "tool_call": return `${e.name}(${json(e.arguments)})`;
    case "tool_result": {
      const fillers = e.fillers && e.fillers.length ? `, fillers: ${e.fillers.join(" / ")}` : "";
      return `${e.name} → ${e.status} in ${ms(e.ms)}${fillers}: ${json(e.result)}`;
    }
    case "filler": return `"${e.phrase}"${e.cached ? " (cached clip)" : " (generated)"}`;
    case "barge_in": return `caller interrupted after hearing ${ms(e.heard_ms)}; ${ms(e.dropped_ms)} of bot audio dropped`;
    case "dtmf": return `keypad ${e.digit}`;
    case "hangup": return `hung up (${e.outcome})`;
    case "provider_error": return `${e.code || "error"}: ${e.message || ""}`;
    case "flow_webhook": return e.status === "used"
      ? `flow webhook answered in ${ms(e.latency_ms)}: ${e.detail}`
      : `flow webhook fell back to flow ${e.flow} after ${ms(e.latency_ms)} (${e.reason}): ${e.detail}`;
    default: {
      const { t, kind, ...rest } = e;
      return Object.keys(rest).length ? json(rest) : "";
    }
  }
}

