"""`settle demo` runs against the local provider sandboxes, which the `sandbox` extra
installs; a production install has the rest of the CLI without them."""
from __future__ import annotations

import importlib.util

import click

SANDBOX_MODULES = ("sandboxes", "jsonschema", "fastjsonschema", "werkzeug")


def require_sandbox_extra() -> None:
    """Stop with a plain instruction, rather than an ImportError deep in a command, when the
    sandboxes or their packages are missing."""
    missing = [name for name in SANDBOX_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise click.ClickException(
            f"`settle demo` needs the sandbox extra (missing: {', '.join(missing)}): "
            f"pip install 'cashback-settlement[sandbox]'")
