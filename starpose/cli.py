"""``starpose-mobile``: the command line. Each command is a thin call into its package, imported
lazily, so that the core never depends on the exporters or their heavy optional dependencies."""
from __future__ import annotations

import sys

import click

from . import __version__


def require_extra(module: str, extra: str) -> None:
    """Import ``module`` or exit with a message naming the extra that provides it."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as e:
        raise click.ClickException(
            f"{module} is not installed ({e}); install it with: pip install 'starpose-mobile[{extra}]'"
        ) from e


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="starpose-mobile")
def main() -> None:
    """StarPose Mobile: on-device human pose estimation (train, evaluate, export, verify, bench)."""


@main.command("models")
def models_cmd() -> None:
    """List the registered variants with their parameter counts."""
    from .models import create_model, list_models
    from .models.weights import available_pretrained

    have = set(available_pretrained())
    for name in list_models():
        m = create_model(name)
        n = sum(p.numel() for p in m.parameters())
        click.echo(f"{name:12s} {n:>10,d} params   pretrained: {'yes' if name in have else 'no'}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
