"""Exceptions raised by featstore's library code, and its warnings.

Library code raises these; only the command line turns them into a one-line message
and exit code 2. Every message names the file, group, row or value at fault. What worked
but should be known goes through :func:`warn`: a Python warning and a log record.
"""

import logging
import warnings

#: The attr that marks a log record as the copy of a :class:`FeatstoreWarning` (the
#: command line prints the warning itself, so it leaves the copy out).
WARNING_RECORD = "featstore_warning"


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


def warn(message: str, *, source: str = "featstore", stacklevel: int = 1) -> None:
    """Warn the user: a :class:`FeatstoreWarning`, and the same message logged.

    The warning reaches a script or a notebook; the record (level WARNING, on the logger
    ``source``, a child of ``featstore``) reaches what logging routes: a job's log file,
    or the client of a dask cluster, which forwards its workers' records but not their
    warnings. This is the one way featstore warns.

    Parameters
    ----------
    message : str
        What the user should know, naming the group, config or value concerned.
    source : str
        The logger, e.g. the calling module's ``__name__``.
    stacklevel : int
        As :func:`warnings.warn`, counted from the caller of ``warn``.

    Examples
    --------
    >>> import warnings
    >>> from featstore.errors import FeatstoreWarning, warn
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("layer 0 is constant", source="featstore.store.features")
    >>> caught[0].category is FeatstoreWarning, str(caught[0].message)
    (True, 'layer 0 is constant')
    """
    logging.getLogger(source).warning(message, extra={WARNING_RECORD: True})
    warnings.warn(message, FeatstoreWarning, stacklevel=stacklevel + 1)
