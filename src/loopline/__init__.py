"""Loopline: the machine-learning lifecycle as one closed loop.

``import loopline as ll``. Every public name is listed in ``__all__`` and documented in
``docs/api.md``; a test keeps the two equal.
"""

from loopline._version import __version__
from loopline.api import (
    current_workspace,
    downstream,
    link,
    record_event,
    upstream,
    use_workspace,
)
from loopline.blobs.cas import BlobStore, Digest, Manifest, ManifestEntry
from loopline.blobs.gc import GcReport
from loopline.config import Settings, load_settings
from loopline.entities import BlobRef, Event, LineageEdge, Ref
from loopline.errors import (
    AlreadyExists,
    ConfigError,
    Conflict,
    IntegrityError,
    InvalidInput,
    LooplineError,
    NotFound,
    PermissionDenied,
    StoreUnavailable,
    Unauthenticated,
)
from loopline.workspace import Workspace, init_workspace, open_workspace

__all__ = [
    "AlreadyExists",
    "BlobRef",
    "BlobStore",
    "ConfigError",
    "Conflict",
    "Digest",
    "Event",
    "GcReport",
    "IntegrityError",
    "InvalidInput",
    "LineageEdge",
    "LooplineError",
    "Manifest",
    "ManifestEntry",
    "NotFound",
    "PermissionDenied",
    "Ref",
    "Settings",
    "StoreUnavailable",
    "Unauthenticated",
    "Workspace",
    "__version__",
    "current_workspace",
    "downstream",
    "init_workspace",
    "link",
    "load_settings",
    "open_workspace",
    "record_event",
    "upstream",
    "use_workspace",
]
