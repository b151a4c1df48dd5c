"""``${oc.env:NAME}`` in connection strings (a storage URL, a tracking URI): resolved only
when connecting, so a secret never reaches the frozen spec, the run directory, a message or a
pickle that Ray writes to disk."""

from __future__ import annotations

import os
import re

from sweepspec.errors import Problem, SweepspecError
from sweepspec.spec.checks import mask_url

__all__ = ["resolve_env"]

_ENV = re.compile(r"\\?\$\{\s*oc\.env:([^}]*)\}")


def resolve_env(url: str, key: str = "storage") -> str:
    """Replace ``${oc.env:NAME}`` / ``${oc.env:NAME,default}``; an unset variable without a
    default is an error at ``key`` (the spec key that holds ``url``)."""

    def sub(m: re.Match[str]) -> str:
        name, _, default = m.group(1).partition(",")
        value = os.environ.get(name.strip(), default.strip() if default else None)
        if value is None:
            raise SweepspecError(
                Problem(
                    f"the environment variable {name.strip()} is not set "
                    f"(needed by {mask_url(url)})",
                    key,
                    code="env",
                )
            )
        return value

    return _ENV.sub(sub, url)
