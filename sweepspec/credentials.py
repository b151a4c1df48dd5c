"""Credentials in connection strings (a storage URL, a tracking URI).

* ``${oc.env:NAME}`` is resolved only when connecting (:func:`resolve_env`), so a secret never
  reaches the frozen spec, the run directory, a message or a pickle that Ray writes to disk.
* Every URL that is printed or stored goes through :func:`mask_url` (parsed with
  :mod:`urllib.parse`): the password of the user info (whatever characters it holds) and the
  value of every query parameter that names a secret (``?password=...``, ``?token=...``) are
  replaced by ``***``. :func:`scrub` does the same for every URL inside a library's message.
"""

from __future__ import annotations

import os
import re
from urllib.parse import SplitResult, parse_qsl, quote, urlsplit, urlunsplit

from sweepspec.errors import Problem, SweepspecError

__all__ = ["MASK", "SECRET_PARAMS", "inline_secret", "mask_url", "resolve_env", "scrub"]

MASK = "***"
#: Query parameters whose value is a secret (lower case; compared case-insensitively).
SECRET_PARAMS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "pass",
        "sslpassword",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "auth_token",
        "api_key",
        "apikey",
        "key",
        "sslkey",
        "auth",
        "credentials",
        "sig",
        "signature",
    }
)
_ENV = re.compile(r"\\?\$\{\s*oc\.env:([^}]*)\}")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


def _is_reference(value: str) -> bool:
    """``${oc.env:...}``: a reference, not a secret."""
    return value.strip().startswith(("${", "\\${"))


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        return None
    return parts


def _mask_netloc(parts: SplitResult) -> str:
    netloc = parts.netloc
    userinfo, at, host = netloc.rpartition("@")
    if not at:
        return netloc
    user, colon, password = userinfo.partition(":")
    if not colon or not password or _is_reference(password):
        return netloc
    return f"{user}:{MASK}@{host}"


def _mask_query(query: str) -> str:
    if not query:
        return query
    out = []
    for item in query.split("&"):
        name, eq, value = item.partition("=")
        if eq and value and name.lower() in SECRET_PARAMS and not _is_reference(value):
            out.append(f"{name}={MASK}")
        else:
            out.append(item)
    return "&".join(out)


def mask_url(url: str) -> str:
    """``scheme://user:***@host/...?password=***``: never show a password or a token.

    A string that does not parse as a URL is masked whole after its scheme."""
    parts = _split(url)
    if parts is None:
        scheme, sep, _ = url.partition("://")
        return f"{scheme}{sep}{MASK}" if sep else MASK
    netloc, query = _mask_netloc(parts), _mask_query(parts.query)
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # as written (urlunsplit would drop an empty authority: sqlite:///x)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def inline_secret(url: str) -> str | None:
    """What in ``url`` is a secret written inline (not as ``${oc.env:...}``): ``"password"``
    for the user info's, ``"query parameter 'token'"`` for a query's; None when there is none."""
    parts = _split(url)
    if parts is None:
        return None
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at:
        _, colon, password = userinfo.partition(":")
        if colon and password and not _is_reference(password):
            return "password"
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name.lower() in SECRET_PARAMS and value and not _is_reference(value):
            return f"query parameter {name!r}"
    return None


def scrub(text: str) -> str:
    """``text`` (a library's error message) with every URL in it masked."""
    return _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)


def resolve_env(url: str, key: str = "storage") -> str:
    """Replace ``${oc.env:NAME}`` / ``${oc.env:NAME,default}``; an unset variable without a
    default is an error at ``key`` (the spec key that holds ``url``). A value that lands in the
    user info or the query is percent-encoded, so a password holding ``@`` or ``/`` stays one."""

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
        return quote(value, safe="") if _in_credentials(url, m.start()) else value

    return _ENV.sub(sub, url)


def _in_credentials(url: str, offset: int) -> bool:
    """Whether ``offset`` in ``url`` lies in the user info (before the host's ``@``) or in the
    query string: there, a value's reserved characters must be encoded."""
    _, sep, rest = url.partition("://")
    if not sep:
        return False
    start = len(url) - len(rest)
    if offset < start:
        return False
    authority_end = len(url)
    for ch in "/?#":
        i = url.find(ch, start)
        if i != -1:
            authority_end = min(authority_end, i)
    at = url.rfind("@", start, authority_end) if offset < authority_end else -1
    if offset < authority_end:
        return at != -1 and offset < at
    query = url.find("?", start)
    return query != -1 and offset > query
