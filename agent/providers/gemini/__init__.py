"""Gemini Live (BidiGenerateContent) over WebSocket."""
