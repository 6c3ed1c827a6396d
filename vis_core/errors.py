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


class AtlasError(ParameterError):
    """An atlas folder cannot be used for this build or read: another model, other settings,
    another image collection, a build already writing it, a locked or damaged database, a file
    linked from outside the folder, or no atlas there."""


class AtlasUnitError(AtlasError):
    """One unit's entry of an atlas is damaged (a picture that is not the PNG it should be, rows
    that are not the JSON they should be); every other unit can still be read.

    Attributes:
        layer, channel: the unit.
    """

    def __init__(self, layer: str, channel: int, reason: str) -> None:
        self.layer, self.channel, self.reason = layer, channel, reason
        super().__init__(
            f"The atlas entry of layer {layer} channel {channel} is damaged: {reason}. The other entries can "
            "still be read; build the atlas again into a new folder to replace it."
        )
