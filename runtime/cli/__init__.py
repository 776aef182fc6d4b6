"""The ``kiln`` command line."""

from runtime.cli.app import main as main

__all__ = ["main"]
