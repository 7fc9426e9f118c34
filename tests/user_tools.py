"""A user's own tool, referenced from flows as `tests.user_tools:shout`."""


async def shout(text: str) -> dict:
    """Repeat the text in capitals.

    Args:
        text: What to shout.
    """
    return {"shouted": text.upper()}
