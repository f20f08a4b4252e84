"""Pull every call from a Phonewagon account (the library and CLI arrive with their own issue)."""

__version__ = "0.1.0"
__all__ = ["__version__"]
