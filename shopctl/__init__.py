"""shopctl: start, break and watch the shop stack from a terminal."""

__version__ = "0.1.0"
