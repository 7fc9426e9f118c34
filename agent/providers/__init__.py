"""Realtime model providers, one subpackage each; the call path sees only `agent.realtime`."""
