"""Browser UI for the tracker: `create_app` (FastAPI) and its static assets (plain JS, no CDN)."""

from mvlm.serve.app import ServeConfig, create_app

__all__ = ["ServeConfig", "create_app"]
