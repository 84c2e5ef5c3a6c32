"""The Audience page: a static web page (HTML, ES modules, CSS) served by every worker at `/`."""

from segstream.audience.web import audience_routes, static_dir

__all__ = ["audience_routes", "static_dir"]
