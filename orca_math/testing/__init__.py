"""Test helpers that users can use too: a scripted chat client and local test servers."""

from orca_math.testing.scripted import ScriptedChatClient

__all__ = ["ScriptedChatClient"]
