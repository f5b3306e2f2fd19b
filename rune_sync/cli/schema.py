"""``rune-sync schema [KIND] [--out DIR]``: the JSON Schemas, printed or written out."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rune_sync.spec import schemas

_ALIASES = {
    "storageclass": "storageclass",
    "storageclasses": "storageclass",
    "class": "storageclass",
    "volume": "volume",
    "volumes": "volume",
    "snapshot": "snapshot",
    "snapshots": "snapshot",
    "service": "service",
    "services": "service",
    "secret": "secret",
    "secrets": "secret",
    "runefile": "runefile",
    "resources": "resources",
    "document": "resources",
}


@click.command()
@click.argument("kind", required=False)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write every schema (or KIND's) into this directory instead of printing.",
)
def schema(kind: str | None, out: Path | None) -> int:
    """Print the JSON Schemas, or write them to --out DIR for editors.

    KIND is one of storageClass, volume, snapshot, service, secret, runefile,
    resources; without KIND, every schema."""
    docs = schemas.load_all()
    if kind is not None:
        name = _ALIASES.get(kind.lower())
        if name is None:
            choices = "storageClass, volume, snapshot, service, secret, runefile, resources"
            raise click.BadParameter(
                f"unknown kind {kind!r}; choose one of {choices}", param_hint="KIND"
            )
        names = [name]
    else:
        names = [n for n in schemas.ALL_NAMES if n != "common"]
    if out is None:
        if len(names) == 1:
            click.echo(json.dumps(schemas.inline_refs(docs, names[0]), indent=2))
        else:
            click.echo(json.dumps({n: schemas.inline_refs(docs, n) for n in names}, indent=2))
        return 0
    try:
        out.mkdir(parents=True, exist_ok=True)
        for n in [*names, "common"] if kind is None else names:
            doc = docs[n] if kind is None else schemas.inline_refs(docs, n)
            (out / f"{n}.schema.json").write_text(json.dumps(doc, indent=2) + "\n", "utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write schemas to {out}: {exc.strerror}") from None
    click.echo(f"Wrote {len(names) + (1 if kind is None else 0)} schema(s) to {out}", err=True)
    return 0
