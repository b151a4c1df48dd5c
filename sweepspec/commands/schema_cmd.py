"""``sweepspec schema [--check|--write]``."""

from __future__ import annotations

import argparse
import sys

from sweepspec.schema import schema_path, schema_text

__all__ = ["main"]


def main(args: argparse.Namespace) -> int:
    text = schema_text()
    path = schema_path()
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is stale; run `sweepspec schema --write`", file=sys.stderr)
            return 1
        print(f"{path} is up to date", file=sys.stderr)
        return 0
    if args.write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
        return 0
    sys.stdout.write(text)
    return 0
