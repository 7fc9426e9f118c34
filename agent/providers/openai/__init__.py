"""OpenAI Realtime (GA) over WebSocket; the offline engine speaks the same protocol."""
