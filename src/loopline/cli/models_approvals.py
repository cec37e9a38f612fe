"""``loopline models approve|reject|requests|policy``: promotion requests and the policies that
create them. Each command is one registry call; the rules (who may approve, when the alias
moves) live in :class:`~loopline.registry.service.RegistryService`."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from loopline.cli.context import console, print_json, when, workspace
from loopline.cli.models import app
from loopline.errors import InvalidInput

if TYPE_CHECKING:  # imported when a command runs, not to print --help
    from loopline.registry.entities import PromotionRequest

__all__ = ["policy_app"]

policy_app = typer.Typer(
    help="Promotion policies: which aliases need approval or checks before they move.",
    no_args_is_help=True,
)
app.add_typer(policy_app, name="policy")


def _outcome(request: PromotionRequest) -> str:
    label = f"promotion request {request.request_id} ({request.name}@{request.alias} -> "
    label += f"version {request.version}): {request.state}"
    if request.state == "PENDING":
        label += f", {request.approvals} of {request.required_approvals} approval(s)"
    return label


@app.command("approve")
def approve(
    ctx: typer.Context,
    request_id: Annotated[int, typer.Argument(metavar="REQUEST", help="Promotion request id.")],
    comment: Annotated[str, typer.Option(help="Kept with the decision.")] = "",
) -> None:
    """Approve a promotion request. The approval that completes the policy moves the alias; if
    the alias moved elsewhere since the request, it turns STALE instead (exit 5).

    Example: loopline models approve 7 --comment "AUC gain confirmed on holdout"
    """
    console.print(_outcome(workspace(ctx).registry.approve(request_id, comment=comment)))


@app.command("reject")
def reject(
    ctx: typer.Context,
    request_id: Annotated[int, typer.Argument(metavar="REQUEST", help="Promotion request id.")],
    comment: Annotated[str, typer.Option(help="Why; kept with the decision.")] = "",
) -> None:
    """Refuse a promotion request (its requester may withdraw it the same way).

    Example: loopline models reject 7 --comment "calibration is off for new customers"
    """
    console.print(_outcome(workspace(ctx).registry.reject(request_id, comment=comment)))


@app.command("requests")
def requests(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(metavar="[NAME]", help="Only this registered model.", show_default=False),
    ] = None,
    state: Annotated[
        str | None,
        typer.Option(help="PENDING, APPLIED, REJECTED or STALE.", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Promotion requests, oldest first, with their checks and decisions.

    Example: loopline models requests fraud --state PENDING
    """
    found = workspace(ctx).registry.list_promotion_requests(name, state=state)
    if as_json:
        for request in found:
            print_json(dataclasses.asdict(request))
        return
    if not found:
        console.print("no promotion requests")
        return
    table = Table("id", "model", "alias", "version", "state", "approvals", "by", "created (UTC)")
    for r in found:
        table.add_row(
            str(r.request_id),
            r.name,
            r.alias,
            str(r.version),
            r.state,
            f"{r.approvals}/{r.required_approvals} "
            + ", ".join(f"{'+' if d.approved else '-'}{d.actor}" for d in r.decisions),
            r.requested_by,
            when(r.created_ms),
        )
    console.print(table)


@policy_app.command("set")
def policy_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")],
    alias_name: Annotated[str, typer.Option("--alias", help="The alias to govern.")],
    approvals: Annotated[int, typer.Option(help="Distinct approvers needed (0: none).")] = 1,
    role: Annotated[str, typer.Option(help="Approver role: reader, editor or admin.")] = "editor",
    allow_self_approval: Annotated[
        bool, typer.Option(help="Let the requester count as an approver.")
    ] = False,
    check: Annotated[
        list[str] | None,
        typer.Option(
            help="A metric check, METRIC>=X, METRIC<=X, or EVALUATION:METRIC>=X; repeatable.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Govern an alias: moving it then needs approvals and passing checks.

    Example: loopline models policy set fraud --alias production --approvals 2 --role admin
    --check "auc>=0.8"
    """
    policy = workspace(ctx).registry.set_promotion_policy(
        name,
        {
            "alias": alias_name,
            "approvals": approvals,
            "approver_role": role,
            "allow_self_approval": allow_self_approval,
            "checks": [_parse_check(c) for c in check or []],
        },
    )
    console.print(f"{name}@{alias_name}: {json.dumps(policy.to_dict(), sort_keys=True)}")


@policy_app.command("show")
def policy_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")],
) -> None:
    """Every policy in force for a model (set by API or in loopline.toml), one JSON per line.

    Example: loopline models policy show fraud
    """
    policies = workspace(ctx).registry.promotion_policies(name)
    if not policies:
        console.print(f"{name}: no promotion policies; every alias moves freely")
    for policy in policies:
        print_json(policy.to_dict())


@policy_app.command("delete")
def policy_delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")],
    alias_name: Annotated[str, typer.Option("--alias", help="The alias to free.")],
) -> None:
    """Remove the stored policy of an alias (one in loopline.toml still applies).

    Example: loopline models policy delete fraud --alias staging
    """
    workspace(ctx).registry.delete_promotion_policy(name, alias_name)
    console.print(f"{name}@{alias_name}: stored policy removed")


def _parse_check(text: str) -> dict[str, object]:
    """``auc>=0.8`` / ``holdout:auc>=0.8`` / ``latency_ms<=20`` as a check mapping."""
    for op, bound in ((">=", "min"), ("<=", "max")):
        if op in text:
            left, _, right = text.partition(op)
            evaluation, _, metric = left.strip().rpartition(":")
            try:
                value = float(right)
            except ValueError:
                raise InvalidInput(f"--check {text!r}: {right.strip()!r} is not a number") from None
            check: dict[str, object] = {"metric": metric.strip(), bound: value}
            if evaluation:
                check["evaluation"] = evaluation.strip()
            return check
    raise InvalidInput(f"--check {text!r} must look like METRIC>=X or METRIC<=X")
