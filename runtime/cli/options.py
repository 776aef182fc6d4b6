"""Options that several ``kiln`` commands share, spelled one way everywhere."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

__all__ = ["add_format_option"]


class _FormatAction(argparse.Action):
    """``--format text|json`` stored as the boolean ``json`` the commands read."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values == "json")


def add_format_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--format text|json`` (the documented spelling) and ``--json``, its short form.

    Both set ``args.json``; the last one given wins, as for any repeated option.
    """
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        action=_FormatAction,
        dest="json",
        default=False,
        help=f"text (default) or json: {what}",
    )
    parser.add_argument(
        "--json", action="store_true", dest="json", help="the same as --format json"
    )
