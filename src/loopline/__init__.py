"""Loopline: the machine-learning lifecycle as one closed loop.

``import loopline as ll``. Every public name is listed in ``__all__`` and documented in
``docs/api.md``; a test keeps the two equal.
"""

from typing import TYPE_CHECKING

from loopline._lazy import lazy_names
from loopline._version import __version__
from loopline.errors import (
    AlreadyExists,
    ConfigError,
    Conflict,
    IntegrityError,
    InvalidInput,
    LooplineError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    StoreUnavailable,
    Unauthenticated,
)

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time names load on first use
    from loopline import data, models, pipelines
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
    from loopline.pipelines.steps import pipeline, step
    from loopline.pipelines.tuning import tune
    from loopline.tracking.autolog import autolog
    from loopline.tracking.entities import Experiment, Metric, Run, RunInfo, RunStatus, ViewType
    from loopline.tracking.fluent import (
        ActiveRun,
        active_run,
        end_run,
        flush,
        get_metric_history,
        get_run,
        last_active_run,
        log_artifact,
        log_artifacts,
        log_dict,
        log_figure,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_table,
        log_text,
        search_runs,
        seed_everything,
        set_experiment,
        set_tag,
        set_tags,
        start_run,
    )
    from loopline.workspace import Workspace, init_workspace, open_workspace

# Each public name and the module that defines it. Importing loopline stays cheap (the CLI's
# start-up pays for it on every command); a name's module is imported when it is first used.
_LAZY = {
    "ActiveRun": "loopline.tracking.fluent",
    "BlobRef": "loopline.entities",
    "BlobStore": "loopline.blobs.cas",
    "Digest": "loopline.blobs.cas",
    "Event": "loopline.entities",
    "Experiment": "loopline.tracking.entities",
    "GcReport": "loopline.blobs.gc",
    "LineageEdge": "loopline.entities",
    "Manifest": "loopline.blobs.cas",
    "ManifestEntry": "loopline.blobs.cas",
    "Metric": "loopline.tracking.entities",
    "Ref": "loopline.entities",
    "Run": "loopline.tracking.entities",
    "RunInfo": "loopline.tracking.entities",
    "RunStatus": "loopline.tracking.entities",
    "Settings": "loopline.config",
    "ViewType": "loopline.tracking.entities",
    "Workspace": "loopline.workspace",
    "active_run": "loopline.tracking.fluent",
    "autolog": "loopline.tracking.autolog",
    "current_workspace": "loopline.api",
    "data": "loopline.data",
    "downstream": "loopline.api",
    "end_run": "loopline.tracking.fluent",
    "flush": "loopline.tracking.fluent",
    "get_metric_history": "loopline.tracking.fluent",
    "get_run": "loopline.tracking.fluent",
    "init_workspace": "loopline.workspace",
    "last_active_run": "loopline.tracking.fluent",
    "link": "loopline.api",
    "load_settings": "loopline.config",
    "log_artifact": "loopline.tracking.fluent",
    "log_artifacts": "loopline.tracking.fluent",
    "log_dict": "loopline.tracking.fluent",
    "log_figure": "loopline.tracking.fluent",
    "log_metric": "loopline.tracking.fluent",
    "log_metrics": "loopline.tracking.fluent",
    "log_param": "loopline.tracking.fluent",
    "log_params": "loopline.tracking.fluent",
    "log_table": "loopline.tracking.fluent",
    "log_text": "loopline.tracking.fluent",
    "models": "loopline.models",
    "open_workspace": "loopline.workspace",
    "pipeline": "loopline.pipelines.steps",
    "pipelines": "loopline.pipelines",
    "record_event": "loopline.api",
    "search_runs": "loopline.tracking.fluent",
    "seed_everything": "loopline.tracking.fluent",
    "set_experiment": "loopline.tracking.fluent",
    "set_tag": "loopline.tracking.fluent",
    "set_tags": "loopline.tracking.fluent",
    "start_run": "loopline.tracking.fluent",
    "step": "loopline.pipelines.steps",
    "tune": "loopline.pipelines.tuning",
    "upstream": "loopline.api",
    "use_workspace": "loopline.api",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())


__all__ = [
    "ActiveRun",
    "AlreadyExists",
    "BlobRef",
    "BlobStore",
    "ConfigError",
    "Conflict",
    "Digest",
    "Event",
    "Experiment",
    "GcReport",
    "IntegrityError",
    "InvalidInput",
    "LineageEdge",
    "LooplineError",
    "Manifest",
    "ManifestEntry",
    "Metric",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "Ref",
    "Run",
    "RunInfo",
    "RunStatus",
    "Settings",
    "StoreUnavailable",
    "Unauthenticated",
    "ViewType",
    "Workspace",
    "__version__",
    "active_run",
    "autolog",
    "current_workspace",
    "data",
    "downstream",
    "end_run",
    "flush",
    "get_metric_history",
    "get_run",
    "init_workspace",
    "last_active_run",
    "link",
    "load_settings",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "models",
    "open_workspace",
    "pipeline",
    "pipelines",
    "record_event",
    "search_runs",
    "seed_everything",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
    "step",
    "tune",
    "upstream",
    "use_workspace",
]
