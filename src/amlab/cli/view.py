"""`amlab view DB`: the browser viewer of a results database."""

from __future__ import annotations

from typing import Annotated

import typer

from amlab.cli.app import app, console
from amlab.cli.commands import DEFAULT_DB


@app.command()
def view(
    db: Annotated[str, typer.Argument(help="Results database (file or postgresql:// URL)."
                                      )] = str(DEFAULT_DB),
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1; 0 picks a free one.",
                                      min=0, max=65535)] = 0,
) -> None:
    """Browse experiments, cells and transcripts in a browser (local, read-only)."""
    from amlab.web import bind, make_server, url_of

    server = make_server(db)
    sock = bind(port)
    console.print(f"amlab viewer of {db}: [bold]{url_of(sock)}[/]  (read-only; Ctrl-C stops "
                  f"it)", highlight=False, soft_wrap=True)
    server.run(sockets=[sock])
