"""Reading spec files: safe YAML with a location for every node."""

from specs.source.document import DataPath as DataPath
from specs.source.document import Document as Document
from specs.source.document import dotted as dotted
from specs.source.loader import DEFAULT_LIMITS as DEFAULT_LIMITS
from specs.source.loader import Limits as Limits
from specs.source.loader import LoadIssue as LoadIssue
from specs.source.loader import LoadResult as LoadResult
from specs.source.loader import SourceFile as SourceFile
from specs.source.loader import load_paths as load_paths
from specs.source.loader import load_text as load_text
from specs.source.span import Span as Span

__all__ = [
    "DEFAULT_LIMITS",
    "DataPath",
    "Document",
    "Limits",
    "LoadIssue",
    "LoadResult",
    "SourceFile",
    "Span",
    "dotted",
    "load_paths",
    "load_text",
]
