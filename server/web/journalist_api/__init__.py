"""The journalist API: a JSON API on its own listener (docs/JOURNALIST_API.md).

``create_journalist_app(settings)`` builds it; ``lanterne-server run
--journalist-port`` serves it beside the source interface. It shares the
database and object store with the source side and nothing else.
"""

from server.web.journalist_api.app import create_journalist_app

__all__ = ["create_journalist_app"]
