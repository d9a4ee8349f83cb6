"""memnode: a peer-to-peer memory mesh for AI agents. Share embeddings, never text.

The public client surface. Importing it loads grpc and protobuf only: no Chroma, no model.
"""

from memnode._version import __version__
from memnode.client import Client, Hit, Memory, NewMemory, Status
from memnode.errors import (
    DataDirError,
    FailedPrecondition,
    InvalidArgument,
    MemnodeError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from memnode.watch import Change, Watch

__all__ = [
    "__version__",
    "Client",
    "Hit",
    "Memory",
    "Status",
    "NewMemory",
    "Watch",
    "Change",
    "MemnodeError",
    "InvalidArgument",
    "NotFound",
    "FailedPrecondition",
    "ResourceExhausted",
    "Unavailable",
    "Unauthenticated",
    "PermissionDenied",
    "DataDirError",
]
