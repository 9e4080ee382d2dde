"""The HTTP/WebSocket server that official SpacetimeDB clients and the `spacetime` CLI talk to.

    from harness.server import create_app, serve

Imported lazily so that `spacetime-py` commands that do not serve pay nothing for aiohttp.
"""

__all__ = ["create_app", "serve"]


def __getattr__(name):
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(name)
