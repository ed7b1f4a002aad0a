"""ml-intern: an open-source ML engineer that lives in the terminal."""

__version__ = "0.1.0"
