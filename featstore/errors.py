"""Exceptions raised by featstore's library code.

Library code raises these; only the command line turns them into a one-line message
and exit code 2. Every message names the file, group, row or value at fault.
"""


class FeatstoreError(Exception):
    """Base class of every error featstore raises on purpose."""


class InputError(FeatstoreError, ValueError):
    """A user-supplied file, value or option is invalid."""


class StoreError(FeatstoreError):
    """A store is missing, unreadable or does not follow the schema."""


class SchemaVersionError(StoreError):
    """A store was written by a newer (or unknown) schema version."""


class GroupNotFoundError(StoreError, KeyError):
    """A group asked for is not in the store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class IncompleteGroupError(StoreError):
    """A group exists but its write never finished (``complete`` is not set)."""


class GroupExistsError(StoreError):
    """A group (or store) exists and ``overwrite`` was not asked for."""


class GroupLockedError(StoreError):
    """Another process is writing the same group right now."""


class ModelError(FeatstoreError):
    """A model cannot be resolved, loaded or run."""


class FeatstoreWarning(UserWarning):
    """Something worked but the user should know (the CLI prints it as ``warning: …``)."""
