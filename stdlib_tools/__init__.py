"""kiln's standard tool library: each tool is a ``.yaml`` Tool spec beside its code.

The compiler reads the specs without importing any code here; the runtime imports a tool's
module only when a ``builtin`` executor calls it.
"""
