"""``changefeed schemas list | register | check | diff``: the repository's Avro contracts vs the
registry. ``check`` is the CI gate: it exits 1, with reasons, if any contract would be refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streams.cli.context import settings_of
from streams.errors import ChangefeedError, RegistryRequestError
from streams.registry.client import RegistryClient
from streams.registry.contracts import Contract, load_index, local_resolver
from streams.registry.diff import diff as diff_schemas
from streams.registry.errors import RegistryError
from streams.registry.schema import ResolveReference, parse

app = typer.Typer(help="Avro contracts in schemas/ against the schema registry.", no_args_is_help=True)
console = Console()
DirOption = Annotated[Path, typer.Option("--dir", help="Folder holding index.json and the .avsc files.")]
SubjectOption = Annotated[list[str] | None, typer.Option("--subject", "-s", help="Only these subjects.")]


def _setup(ctx: typer.Context, root: Path, only: list[str] | None) -> tuple[RegistryClient, list[Contract]]:
    try:
        contracts = [c for c in load_index(root) if not only or c.subject in only]
    except ChangefeedError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    return RegistryClient(settings_of(ctx).registry.url), contracts


def _pinned(client: RegistryClient, subject: str) -> int:
    latest = client.latest(subject)
    if latest is None:
        msg = f"referenced subject {subject} is not registered yet (register it first)"
        raise ChangefeedError(msg)
    return latest.version


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]{exc}[/red]")
    return typer.Exit(1)


@app.command("list")
def list_(ctx: typer.Context, root: DirOption = Path("schemas"), only: SubjectOption = None) -> None:
    """Every contract with its level and whether the registry's latest equals the local file."""
    client, contracts = _setup(ctx, root, only)
    table = Table("subject", "file", "level", "registry", "status")
    with client:
        for c in contracts:
            try:
                latest = client.latest(c.subject)
                if latest is None:
                    where, status = "-", "[yellow]not registered[/yellow]"
                else:
                    found = _lookup(client, c)
                    where = f"v{latest.version} id {latest.schema_id}"
                    same = found == latest.version
                    status = "[green]up to date[/green]" if same else "[yellow]changed[/yellow]"
            except ChangefeedError as exc:
                raise _fail(exc) from exc
            table.add_row(c.subject, str(c.path), c.level.value, where, status)
    console.print(table)


def _lookup(client: RegistryClient, contract: Contract) -> int | None:
    try:
        return client.lookup(contract.subject, contract.source(lambda s: _pinned(client, s))).version
    except RegistryRequestError:
        return None


@app.command()
def register(ctx: typer.Context, root: DirOption = Path("schemas"), only: SubjectOption = None) -> None:
    """Set each subject's level from the index, then register its schema (idempotent)."""
    client, contracts = _setup(ctx, root, only)
    table = Table("subject", "level", "version", "id")
    with client:
        for c in contracts:
            try:
                client.set_level(c.level.value, c.subject)
                done = client.register(c.subject, c.source(lambda s: _pinned(client, s)))
            except ChangefeedError as exc:
                console.print(table)
                raise _fail(exc) from exc
            table.add_row(c.subject, c.level.value, str(done.version), str(done.schema_id))
    console.print(table)


@app.command()
def check(ctx: typer.Context, root: DirOption = Path("schemas"), only: SubjectOption = None) -> None:
    """Test every contract against its subject's latest through the registry; exit 1 if any fails."""
    client, contracts = _setup(ctx, root, only)
    resolve = local_resolver(load_index(root))
    table = Table("subject", "result", "reasons")
    failed = False
    with client:
        for c in contracts:
            reasons = _problems(client, c, resolve)
            failed = failed or bool(reasons)
            verdict = "[red]FAIL[/red]" if reasons else "[green]ok[/green]"
            table.add_row(c.subject, verdict, "\n".join(reasons))
    console.print(table)
    if failed:
        raise typer.Exit(1)


def _problems(client: RegistryClient, c: Contract, resolve: ResolveReference) -> list[str]:
    """Reasons this contract would be refused: invalid locally, incompatible, or a level mismatch."""
    try:
        parse(c.source(lambda _: 1), resolve)
    except RegistryError as exc:
        return [f"{c.path}: {exc.message}"]
    try:
        if client.latest(c.subject) is None:
            return []  # a new subject: nothing to be compatible with
        reasons = client.compatibility_problems(c.subject, c.source(lambda s: _pinned(client, s)))
        level = client.level(c.subject)
    except ChangefeedError as exc:
        return [str(exc)]
    if level != c.level.value:
        fix = "run `changefeed schemas register`"
        reasons.append(f"registry level is {level}, index says {c.level.value} ({fix})")
    return reasons


@app.command()
def diff(ctx: typer.Context, root: DirOption = Path("schemas"), only: SubjectOption = None) -> None:
    """Field by field, what the local files change relative to the registry's latest versions."""
    client, contracts = _setup(ctx, root, only)
    with client:
        for c in contracts:
            try:
                latest = client.latest(c.subject)
            except ChangefeedError as exc:
                raise _fail(exc) from exc
            if latest is None:
                console.print(f"[yellow]{c.subject}[/yellow]: not registered yet (all fields new)")
                continue
            changes = diff_schemas(json.loads(latest.source.text), json.loads(c.text))
            if not changes:
                console.print(f"[green]{c.subject}[/green]: same as v{latest.version}")
                continue
            table = Table("field", "change", f"v{latest.version}", "local", title=c.subject)
            for change in changes:
                table.add_row(change.path, change.change, change.old, change.new)
            console.print(table)
