"""The one exception root of labcolor.

Library code raises these (or subclasses defined next to the code that raises them); only the
CLI turns them into a one-line message and an exit code, in one place (the app group in labcolor.cli).
Each class also derives from the built-in type that fits, so `except ValueError` in an
embedding app keeps working.
"""

from __future__ import annotations


class LabcolorError(Exception):
    """Root of every error labcolor raises on purpose."""


class InputError(LabcolorError, ValueError):
    """Input data is unusable: a picture, a picture folder, a dataset or a metrics file."""


class ImageError(InputError):
    """A file is not a picture labcolor can read (empty, corrupt, truncated, unknown format, odd pixel type)."""


class ModelError(LabcolorError, ValueError):
    """A model or checkpoint file is missing, unreadable, or not one labcolor can use."""


class ConfigError(LabcolorError, ValueError):
    """An option is invalid or inconsistent with another one."""


class DeviceError(LabcolorError, RuntimeError):
    """The requested device (e.g. device="cuda") cannot be used on this machine."""


class OutputError(LabcolorError, OSError):
    """A result could not be encoded or written, or the output location is unsafe (inside an input folder)."""


class ModelOutputError(ModelError):
    """The network's output for a picture is unusable (NaN or infinite values, wrong shape): a broken model
    file, never a property of the picture. The folder pipeline fails that picture and stops the run when
    every picture so far failed this way."""
