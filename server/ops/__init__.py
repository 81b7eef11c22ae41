"""The operations layer: the ``lanterne-server`` command, serving, backup and
restore, the health check, Tor configuration. It may use every other layer.
Layers: docs/SERVER_LAYERS.md.
"""
