"""The runtime's exceptions: library code raises these, only the CLI turns them into messages and exit codes."""

from __future__ import annotations


class ColorizeError(Exception):
    """Base class of every error the runtime raises on purpose (MetadataError aside, see runtime.metadata)."""


class ModelError(ColorizeError):
    """The model file is missing, unreadable, or not a model onnxruntime can load."""


class DeviceError(ColorizeError, RuntimeError):
    """The requested device (e.g. device="cuda") cannot be used on this machine."""


class ImageError(ColorizeError, ValueError):
    """A file is not a picture this runtime can read (empty, corrupt, truncated, unknown format, odd pixel type)."""


class OutputError(ColorizeError, OSError):
    """A picture could not be encoded or written, or the output location is unsafe (inside an input folder)."""
