"""``kiln import``: agents from other frameworks written as kiln specs.

Each importer reads another framework's files without running any of their code (CrewAI's
``crew.py`` is parsed with :mod:`ast`, never imported), returns the documents it could
build and a list of what it could not carry over, and :func:`write_specs` writes them.
"""

from __future__ import annotations

from runtime.importers.common import Imported, Leftover, write_specs

__all__ = ["Imported", "Leftover", "write_specs"]
