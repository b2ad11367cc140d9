"""The command groups of `shopctl`, one module each: each a thin edge that
parses, calls the library and prints. `shopctl/cli.py` puts them together."""
