"""``loopline scheduler`` (the loop) and ``loopline schedule ...`` (register, list, trigger,
history). Each command is one call on :class:`~loopline.pipelines.scheduler.Scheduler`; the
rules live there. The service is imported when a command runs, so ``--help`` stays fast.

Two environment variables exist for tests and reproducible demos, not for production:
``LOOPLINE_SCHEDULER_CLOCK_FILE`` makes the schedule clock read "now" (ISO 8601) from a file at
every tick, and ``LOOPLINE_SCHEDULER_HANG_FILE`` makes each launch create that file and hang
after its fire was recorded, so a test can SIGKILL the scheduler at exactly that point.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from loopline.cli.context import console, when, workspace
from loopline.errors import InvalidInput

if TYPE_CHECKING:
    from loopline.pipelines.schedule_entities import Fire
    from loopline.pipelines.scheduler import Scheduler

__all__ = ["CLOCK_FILE_ENV", "HANG_FILE_ENV", "schedule_app", "scheduler"]

CLOCK_FILE_ENV = "LOOPLINE_SCHEDULER_CLOCK_FILE"
HANG_FILE_ENV = "LOOPLINE_SCHEDULER_HANG_FILE"

schedule_app = typer.Typer(
    help="Register schedules and triggers (cron, new dataset version, alert, manual) and see "
    "their history. 'loopline scheduler' runs them.",
    no_args_is_help=True,
)

_JSON = "One JSON object per line."
ScheduleName = Annotated[str, typer.Argument(metavar="NAME", help="Schedule name.")]


def _file_clock(path: str) -> dt.datetime:
    text = Path(path).read_text().strip()
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{CLOCK_FILE_ENV} file {path} must hold an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _hang(marker: str) -> Any:
    def before_launch(fire: Fire) -> None:
        Path(marker).write_text(str(fire.id))
        while True:
            time.sleep(60)

    return before_launch


def _scheduler(ctx: typer.Context, **options: Any) -> Scheduler:
    from loopline.pipelines.scheduler import Scheduler

    clock_file = os.environ.get(CLOCK_FILE_ENV)
    if clock_file:
        options["clock"] = lambda: _file_clock(clock_file)
    hang_file = os.environ.get(HANG_FILE_ENV)
    if hang_file:
        options["before_launch"] = _hang(hang_file)
    return Scheduler(workspace(ctx), **options)


def _params(pairs: list[str] | None) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--param {pair!r} must look like KEY=VALUE")
        params[key] = value
    return params


def _fire_line(fire: Fire) -> str:
    run = f" run {fire.run_id}" if fire.run_id else ""
    error = f": {fire.error}" if fire.error else ""
    return f"{fire.schedule_name} fire {fire.id} ({fire.key}) {fire.status}{run}{error}"


def scheduler(
    ctx: typer.Context,
    poll: Annotated[float, typer.Option("--poll", help="Seconds between ticks.", min=0.01)] = 5.0,
    once: Annotated[
        bool, typer.Option("--once", help="Run one tick (due fires, launched) and exit.")
    ] = False,
    lease: Annotated[
        float,
        typer.Option(
            "--lease",
            hidden=True,
            help="Seconds a fire stays claimed without a heartbeat before another scheduler "
            "may re-launch it.",
        ),
    ] = 60.0,
) -> None:
    """Run registered schedules: every --poll seconds, launch what is due.

    Launches run one at a time in this process. SIGTERM or Ctrl-C finishes the launch in
    progress and exits 0; a fire left unfinished by a killed scheduler is launched again by the
    next one.

    Example: loopline scheduler --poll 10
    """
    service = _scheduler(ctx, lease_seconds=lease, on_fire=lambda f: console.print(_fire_line(f)))
    if once:
        service.tick()
        return
    console.print(f"scheduler {service.owner} running; Ctrl-C to stop")
    service.run_forever(poll_seconds=poll)
    console.print("scheduler stopped")


@schedule_app.command("add")
def add(
    ctx: typer.Context,
    name: ScheduleName,
    target: Annotated[
        str, typer.Option("--target", "-t", help="What to launch: module.path:function.")
    ],
    cron: Annotated[
        str | None, typer.Option("--cron", help="Cron expression, e.g. '*/5 * * * *'.")
    ] = None,
    on_dataset: Annotated[
        str | None, typer.Option("--on-dataset", help="Fire on each new version of this dataset.")
    ] = None,
    on_alert: Annotated[
        str | None, typer.Option("--on-alert", help="Fire when this alert fires.")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="KEY=VALUE (repeatable).")
    ] = None,
    timezone: Annotated[str, typer.Option("--timezone", help="Timezone of --cron.")] = "UTC",
    catch_up: Annotated[
        str,
        typer.Option(
            "--catch-up",
            help="When several are due at once (after downtime): 'latest' fires once, 'all' "
            "fires each.",
        ),
    ] = "latest",
) -> None:
    """Register a schedule. Without --cron/--on-dataset/--on-alert it fires only when
    triggered ('loopline schedule trigger').

    Example: loopline schedule add nightly --target train:main --cron "0 3 * * *" -p lr=0.1
    """
    schedule = _scheduler(ctx).add_schedule(
        name,
        target,
        cron=cron,
        dataset=on_dataset,
        alert=on_alert,
        params=_params(param),
        timezone=timezone,
        catch_up=catch_up,
    )
    console.print(f"schedule {schedule.name!r} added: {schedule.target} on {schedule.trigger}")


@schedule_app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help=_JSON)] = False,
) -> None:
    """Registered schedules.

    Example: loopline schedule list
    """
    found = _scheduler(ctx).list()
    if as_json:
        for s in found:
            data = {k: v for k, v in vars(s).items()}
            console.print(json.dumps(data, sort_keys=True), soft_wrap=True)
        return
    table = Table("name", "target", "trigger", "params", "catch-up", "enabled")
    for s in found:
        params = " ".join(f"{k}={v}" for k, v in sorted(s.params.items()))
        table.add_row(s.name, s.target, s.trigger, params, s.catch_up, "yes" if s.enabled else "no")
    console.print(table)
    console.print(f"{len(found)} schedule(s)")


@schedule_app.command("remove")
def remove(
    ctx: typer.Context,
    name: ScheduleName,
) -> None:
    """Delete a schedule and its fire history (the runs it launched stay)."""
    _scheduler(ctx).remove(name)
    console.print(f"schedule {name!r} removed")


@schedule_app.command("enable")
def enable(
    ctx: typer.Context,
    name: ScheduleName,
) -> None:
    """Resume a schedule; what happened while it was disabled does not fire."""
    _scheduler(ctx).enable(name)
    console.print(f"schedule {name!r} enabled")


@schedule_app.command("disable")
def disable(
    ctx: typer.Context,
    name: ScheduleName,
) -> None:
    """Pause a schedule."""
    _scheduler(ctx).disable(name)
    console.print(f"schedule {name!r} disabled")


@schedule_app.command("trigger")
def trigger(
    ctx: typer.Context,
    name: ScheduleName,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="KEY=VALUE (repeatable).")
    ] = None,
    queue: Annotated[
        bool,
        typer.Option("--queue", help="Only record the fire; the running scheduler launches it."),
    ] = False,
    request_id: Annotated[
        str | None,
        typer.Option("--request-id", help="Idempotency key: the same id fires once."),
    ] = None,
) -> None:
    """Fire a schedule now, here (or, with --queue, in the running scheduler). Exits 1 if the
    launch failed.

    Example: loopline schedule trigger nightly -p lr=0.05
    """
    fire = _scheduler(ctx).trigger(name, _params(param), request_id=request_id, wait=not queue)
    console.print(_fire_line(fire))
    if fire.status == "failed":
        raise typer.Exit(1)


@schedule_app.command("history")
def history(
    ctx: typer.Context,
    name: ScheduleName,
    limit: Annotated[int, typer.Option("--limit", help="Show at most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help=_JSON)] = False,
) -> None:
    """A schedule's fires, newest first: what triggered each, its status and run.

    Example: loopline schedule history nightly
    """
    fires = _scheduler(ctx).history(name, limit=limit)
    if as_json:
        for f in fires:
            console.print(json.dumps(vars(f), sort_keys=True), soft_wrap=True)
        return
    table = Table("fire", "key", "trigger", "scheduled (UTC)", "status", "run", "attempts", "error")
    for f in fires:
        table.add_row(
            str(f.id),
            f.key,
            f.trigger,
            when(f.scheduled_ms),
            f.status,
            f.run_id or "",
            str(f.attempts),
            f.error or "",
        )
    console.print(table)
