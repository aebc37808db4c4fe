"""The library version, in a leaf module: the engine reads it without importing the agents."""

__version__ = "0.2.0"
