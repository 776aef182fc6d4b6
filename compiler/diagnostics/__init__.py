"""Diagnostics: the catalogue of codes, the data, suggestions and rendering."""

from compiler.diagnostics.codes import CODES as CODES
from compiler.diagnostics.codes import Code as Code
from compiler.diagnostics.model import Diagnostic as Diagnostic
from compiler.diagnostics.model import error as error
from compiler.diagnostics.render import render_json as render_json
from compiler.diagnostics.render import render_text as render_text
from compiler.diagnostics.render import summary as summary
from compiler.diagnostics.suggest import closest as closest
from compiler.diagnostics.suggest import did_you_mean as did_you_mean

__all__ = [
    "CODES",
    "Code",
    "Diagnostic",
    "closest",
    "did_you_mean",
    "error",
    "render_json",
    "render_text",
    "summary",
]
