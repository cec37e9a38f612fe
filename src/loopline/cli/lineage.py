from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text
from rich.tree import Tree

from loopline.cli.context import console, workspace
from loopline.entities import LineageEdge, Ref

app = typer.Typer(help="Explore lineage between objects.", no_args_is_help=True)


def _tree(root: Ref, edges: list[LineageEdge], upstream: bool) -> Tree:
    tree = Tree(Text(str(root), style="bold"))
    children: dict[Ref, list[LineageEdge]] = {}
    for edge in edges:
        parent = edge.target if upstream else edge.source
        children.setdefault(parent, []).append(edge)

    def grow(node: Tree, ref: Ref, path: frozenset[Ref]) -> None:
        for edge in children.get(ref, []):
            other = edge.source if upstream else edge.target
            label = Text.assemble(str(other), (f"  ({edge.relation})", "dim"))
            if other in path:
                node.add(label + Text(" cycle", style="dim"))
                continue
            grow(node.add(label), other, path | {other})

    grow(tree, root, frozenset({root}))
    return tree


@app.command("show")
def show(
    ctx: typer.Context,
    obj: Annotated[str, typer.Argument(help="The object, as KIND:ID (e.g. run:a1b2).")],
    downstream: Annotated[
        bool, typer.Option("--downstream", help="Show what OBJ fed, instead of what fed it.")
    ] = False,
    depth: Annotated[int, typer.Option(help="Follow at most this many hops.")] = 50,
) -> None:
    """Print what an object came from (default) or what it flowed into, as a tree."""
    ref = Ref.parse(obj)
    ws = workspace(ctx)
    walk = ws.lineage.downstream if downstream else ws.lineage.upstream
    edges = walk(ref, depth)
    if not edges:
        console.print(f"{ref}: no {'downstream' if downstream else 'upstream'} lineage recorded")
        return
    console.print(_tree(ref, edges, upstream=not downstream))
