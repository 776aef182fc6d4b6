"""The compiler's passes, one concern each, run in order by ``compiler.pipeline``."""
