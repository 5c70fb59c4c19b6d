"""The `amlab` command. Each module of this package registers its commands on `app`."""

from amlab.cli.app import app, main

__all__ = ["app", "main"]
