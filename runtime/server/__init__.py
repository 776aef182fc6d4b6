"""``kiln serve``: the HTTP API over the engine (runtime/server/app.py), API keys
(runtime/server/keys.py) and the runs in flight (runtime/server/runs.py)."""
