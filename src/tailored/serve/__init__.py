"""The running engine over HTTP: `create_app(settings)` (FastAPI), one router per resource."""

from tailored.serve.app import create_app
from tailored.serve.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]
