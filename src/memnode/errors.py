"""The one exception tree of memnode.

    MemnodeError
    ├── InvalidArgument      bad input from a client or a peer   -> INVALID_ARGUMENT
    ├── NotFound             no such memory                      -> NOT_FOUND
    ├── FailedPrecondition   e.g. forgetting another node's memory -> FAILED_PRECONDITION
    ├── ResourceExhausted    a batch or text over a limit         -> RESOURCE_EXHAUSTED
    ├── Unavailable          the node cannot be reached           -> UNAVAILABLE
    ├── Unauthenticated      no token, or a bad one               -> UNAUTHENTICATED
    ├── PermissionDenied     a good token without the needed scope -> PERMISSION_DENIED
    ├── DataDirError         a corrupt, foreign or unreadable data directory (at start)
    └── UsageError           a command line that cannot work (the CLI exits 2)

Each error carries a ``kind`` used as the label of ``memnode_errors_total``.
"""

from __future__ import annotations


class MemnodeError(Exception):
    kind = "internal"


class InvalidArgument(MemnodeError):
    kind = "invalid_argument"


class NotFound(MemnodeError):
    kind = "not_found"


class FailedPrecondition(MemnodeError):
    kind = "failed_precondition"


class ResourceExhausted(MemnodeError):
    kind = "resource_exhausted"


class Unavailable(MemnodeError):
    kind = "unavailable"


class Unauthenticated(MemnodeError):
    kind = "unauthenticated"


class PermissionDenied(MemnodeError):
    kind = "permission_denied"


class DataDirError(MemnodeError):
    kind = "data_dir"


class UsageError(MemnodeError):
    kind = "usage"


class EmbedderError(MemnodeError):
    """The embedding model is missing, corrupt or not the pinned version (at start)."""

    kind = "embedder"
