"""Exception types raised by the engine.

Every error a user can cause (a bad upload, an unknown layer, weights that cannot be
fetched) is one of these, so the dashboard can show it with ``st.error`` and the CLI can
exit with status 2 and a single line, without a traceback.
"""

from __future__ import annotations


class VisCoreError(Exception):
    """Base class for every error the engine raises on purpose."""


class ImageError(VisCoreError, ValueError):
    """An image could not be accepted: wrong format, corrupt, too large, or empty."""


class ModelError(VisCoreError, ValueError):
    """A model or its weights could not be loaded, or do not fit together."""


class ParameterError(VisCoreError, ValueError):
    """A parameter is out of range: unknown layer, channel index, caps exceeded."""


class ResourceError(VisCoreError, MemoryError):
    """The device ran out of memory for one request; the model is intact and the next request works."""
