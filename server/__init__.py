"""The Lanterne server: the source interface and the journalist API.

Build the source app with ``server.web.app.create_app(settings)`` and the API with
``server.web.journalist_api.create_journalist_app(settings)``; run and administer
them with the ``lanterne-server`` command (``server.ops.admin``), which serves each
on its own port (``run --journalist-port``).
"""
