"""The domain layer: sources and their lifecycle, submissions, the newsroom's
triage, sessions, codenames and the clock. No HTTP, no SQL: it reaches data
through the store layer. Layers: docs/SERVER_LAYERS.md.
"""
