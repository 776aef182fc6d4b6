"""Isolated, pooled execution of tool code (backends: nsjail, bubblewrap, none)."""
