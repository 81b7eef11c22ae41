"""The web layer: the source interface's routes and pages, the journalist API,
middleware and error pages. No SQL, no data-directory paths: it asks the
domain layer. Layers: docs/SERVER_LAYERS.md.
"""
