"""``sweepspec completion bash|zsh|tcsh``: print a shell completion script.

The script is generated from the CLI's own parser (shtab), so it knows every command and
option; spec and path arguments complete file names::

    eval "$(sweepspec completion bash)"                       # in ~/.bashrc
    sweepspec completion zsh > "${fpath[1]}/_sweepspec"       # zsh, once
"""

from __future__ import annotations

import argparse
import sys

from sweepspec.errors import Problem, SweepspecError

__all__ = ["main"]


def main(args: argparse.Namespace) -> int:
    try:
        import shtab
    except ImportError:
        raise SweepspecError(
            Problem(
                "shell completion needs the shtab package: pip install shtab",
                code="missing-package",
            )
        ) from None
    from sweepspec.cli import build_parser

    sys.stdout.write(shtab.complete(build_parser(), shell=args.shell))
    return 0
