"""The Lanterne server: the source interface (and, later, the journalist API).

Build the app with ``server.app.create_app(settings)``; run and administer it
with the ``lanterne-server`` command (``server.admin``).
"""
