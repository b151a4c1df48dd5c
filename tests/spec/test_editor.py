"""What an editor shows: the real YAML language server (the one behind VS Code's YAML extension,
Neovim's and Helix's YAML support), driven over LSP as an editor drives it, checks the specs with
the schema named by their modeline (or by the ``yaml.schemas`` setting).

Valid specs (every example, one with ``extends:``, one with ``${...}`` in numbers) get no
diagnostic at all; a misspelt key gets one, at its line. ``scripts/yaml-language-server``
installs the pinned server with npm on first use.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sweepspec.errors import SweepspecError
from sweepspec.load import load_spec
from sweepspec.schema import SCHEMA_FILE, schema_text

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "sweeps").glob("*.yaml"))
MODELINE = f"# yaml-language-server: $schema=../schemas/{SCHEMA_FILE}\n"
WAIT_S = 120  # a guard against a hung server, not a timing assertion


class LanguageServer:
    """A client of ``yaml-language-server --stdio``: JSON-RPC with Content-Length framing."""

    def __init__(self, binary: str, root: Path, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.proc = subprocess.Popen(
            [binary, "--stdio"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.diagnostics: dict[str, list[dict[str, Any]]] = {}
        self.next_id = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        capabilities = {
            "workspace": {"configuration": True, "didChangeConfiguration": {}},
            "textDocument": {"publishDiagnostics": {}, "hover": {}, "completion": {}},
        }
        self.request(
            "initialize",
            {"processId": os.getpid(), "rootUri": root.as_uri(), "capabilities": capabilities},
        )
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration", {"settings": {"yaml": settings}})

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        while True:
            length = 0
            while line := stream.readline():
                if not line.strip():
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if not line:
                self.inbox.put(None)
                return
            self.inbox.put(json.loads(stream.read(length)))

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.proc.stdin.flush()

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self._send({"method": method, "params": params})

    def request(self, method: str, params: dict[str, Any]) -> Any:
        self.next_id += 1
        wanted = self.next_id
        self._send({"id": wanted, "method": method, "params": params})
        while True:
            message = self._next()
            if message.get("id") == wanted and "method" not in message:
                assert "error" not in message, message["error"]
                return message.get("result")

    def _next(self) -> dict[str, Any]:
        """The next message from the server, answering its requests and keeping diagnostics."""
        message = self.inbox.get(timeout=WAIT_S)
        assert message is not None, "the language server exited"
        if message.get("method") == "textDocument/publishDiagnostics":
            params = message["params"]
            self.diagnostics[params["uri"]] = params["diagnostics"]
        elif "method" in message and "id" in message:  # a request of the server's
            result: Any = None
            if message["method"] == "workspace/configuration":
                sections = {"yaml": self.settings}
                result = [sections.get(i.get("section"), {}) for i in message["params"]["items"]]
            self._send({"id": message["id"], "result": result})
        return message

    def open(self, path: Path) -> list[dict[str, Any]]:
        """Open ``path`` as an editor does; the diagnostics the server publishes for it."""
        uri = path.as_uri()
        self.diagnostics.pop(uri, None)
        text = path.read_text(encoding="utf-8")
        document = {"uri": uri, "languageId": "yaml", "version": 1, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": document})
        while uri not in self.diagnostics:
            self._next()
        return self.diagnostics[uri]

    def hover(self, path: Path, line: int, col: int) -> str:
        position = {"line": line, "character": col}
        result = self.request(
            "textDocument/hover", {"textDocument": {"uri": path.as_uri()}, "position": position}
        )
        return str(result["contents"]["value"]) if result else ""

    def complete(self, path: Path, line: int, col: int) -> set[str]:
        position = {"line": line, "character": col}
        result = self.request(
            "textDocument/completion",
            {"textDocument": {"uri": path.as_uri()}, "position": position},
        )
        items = result["items"] if isinstance(result, dict) else result or []
        return {item["label"] for item in items}

    def close(self) -> None:
        self.request("shutdown", {})
        self.notify("exit", {})
        try:
            self.proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=WAIT_S)  # it has read to the end of the output
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


# the JSON Schema Store is a download: an editor offline (and these tests) go without it
SETTINGS: dict[str, Any] = {"validate": True, "hover": True, "completion": True}
SETTINGS["schemaStore"] = {"enable": False}


@pytest.fixture(scope="module")
def binary() -> str:
    done = subprocess.run(
        [str(REPO / "scripts" / "yaml-language-server")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def server(binary: str) -> Iterator[LanguageServer]:
    client = LanguageServer(binary, REPO, SETTINGS)
    yield client
    client.close()


def shown(diagnostics: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """(1-based line, message) of each diagnostic."""
    return [(d["range"]["start"]["line"] + 1, d["message"]) for d in diagnostics]


def first_key(path: Path) -> tuple[int, str]:
    """The 0-based line and the name of the first top-level key of ``path``."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if line[:1].isalpha():
            return number, line.partition(":")[0]
    raise AssertionError(f"{path} has no top-level key")


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    """A repository of specs outside this one: its copy of the schema (what ``sweepspec
    schema --write schemas/`` writes), a base, a spec that extends it and one with
    interpolations."""
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / SCHEMA_FILE).write_text(schema_text(), encoding="utf-8")
    (tmp_path / "sweeps").mkdir()
    specs = {
        "_base.yaml": """\
sweepspec: 1
objective:
  function: sweepspec_examples.toy:quadratic
  metric: loss
  mode: min
  config: {epochs: 10, log_lr: true, patience: 30m}
space:
  x: {uniform: [-1.0, 1.0]}
  lr: {loguniform: [1.0e-4, 1.0e-1]}
scheduler: {type: asha, max_t: 10, grace_period: 1}
""",
        "small.yaml": """\
extends: _base.yaml
objective:
  config: {epochs: 4}
space:
  x: {uniform: [-0.5, 0.5]}
scheduler: {max_t: 4}
trials: {num_samples: 5}
""",
        "interpolated.yaml": """\
sweepspec: 1
objective:
  function: sweepspec_examples.toy:quadratic
  metric: loss
  mode: min
  config: {epochs: 12, low: 1, log_lr: true, patience: 30m}
space:
  lr:
    int: [1, "${objective.config.epochs}"]
    log: ${objective.config.log_lr}
scheduler:
  type: asha
  max_t: ${objective.config.epochs}
  grace_period: ${objective.config.low}
trials:
  num_samples: ${objective.config.epochs}
  timeout: ${objective.config.patience}
resources:
  max_concurrent: ${objective.config.low}
""",
    }
    for name, text in specs.items():
        (tmp_path / "sweeps" / name).write_text(MODELINE + text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_show_no_diagnostics(server: LanguageServer, path: Path) -> None:
    assert path.read_text(encoding="utf-8").startswith(MODELINE)
    assert shown(server.open(path)) == []
    line, key = first_key(path)  # the schema is in effect: its description is the hover text
    assert server.hover(path, line, 1), f"no hover text on {key!r}: the schema did not load"


def test_extends_and_interpolations_show_no_diagnostics(
    server: LanguageServer, user_repo: Path
) -> None:
    for name in ("_base.yaml", "small.yaml", "interpolated.yaml"):
        path = user_repo / "sweeps" / name
        assert shown(server.open(path)) == [], name
        if not name.startswith("_"):
            load_spec(path)  # and sweepspec agrees: valid
    small = user_repo / "sweeps" / "small.yaml"
    assert "Trial budget" in server.hover(small, 7, 1)  # `trials:` in a spec with extends
    assert {"searcher", "stop", "backend"} <= server.complete(small, 8, 0)


#: the first lines of a spec and of one that extends a base; a mistake goes on line 4
HEADS = {
    "spec": "sweepspec: 1\nobjective: {function: train:main, metric: loss, mode: min}\n",
    "extends": "extends: _base.yaml\nobjective: {config: {epochs: 3}}\n",
}


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        ("trails: {num_samples: 3}", "Property trails is not allowed."),
        ("searcher: {type: tpe, sed: 1}", "Property sed is not allowed."),
        ("space: {x: {uniform: [0, 1], stepp: 0.1}}", "Matches a schema that is not allowed."),
        ("space: {x: {unifrom: [0, 1]}}", "Matches a schema that is not allowed."),
        ("scheduler: {type: asha, max_t: 10.5}", 'Incorrect type. Expected "integer".'),
        ("scheduler: {max_tt: 10}", "Property max_tt is not allowed."),
        ("trials: {timeout: 30m1h}", "largest first"),
        ('trials: {num_samples: "${objective.config.epochs}0"}', 'Expected "integer"'),
    ],
    ids=[
        "top-level",
        "nested",
        "modifier",
        "distribution",
        "not-an-integer",
        "scheduler",
        "units-out-of-order",
        "not-a-whole-interpolation",
    ],
)
def test_mistakes_are_flagged(
    server: LanguageServer, user_repo: Path, head: str, mistake: str, message: str
) -> None:
    """At the line of the mistake, in a spec and in one that extends a base; sweepspec
    rejects the same spec."""
    path = user_repo / "sweeps" / "mistake.yaml"
    space = "" if mistake.startswith("space:") or head == "extends" else "space: {y: 1}\n"
    path.write_text(f"{MODELINE}{HEADS[head]}{mistake}\n{space}", encoding="utf-8")
    found = shown(server.open(path))
    assert [m for line, m in found if line == 4 and message in m], found
    with pytest.raises(SweepspecError):
        load_spec(path)


def test_missing_keys_are_flagged_without_extends(server: LanguageServer, user_repo: Path) -> None:
    path = user_repo / "sweeps" / "partial.yaml"
    path.write_text(MODELINE + "sweepspec: 1\nobjective: {metric: loss, mode: min}\n", "utf-8")
    messages = [m for _, m in shown(server.open(path))]
    assert 'Missing property "space".' in messages
    assert 'Missing property "function".' in messages


def test_schema_from_the_editor_settings(binary: str, user_repo: Path) -> None:
    """Without a modeline: the ``yaml.schemas`` setting (VS Code's settings.json) maps a glob
    of spec files to the schema."""
    schema = (user_repo / "schemas" / SCHEMA_FILE).as_uri()
    settings = {**SETTINGS, "schemas": {schema: ["sweeps/*.yaml"]}}
    sweeps = user_repo / "sweeps"
    for name in ("interpolated.yaml", "small.yaml"):
        text = (sweeps / name).read_text(encoding="utf-8").removeprefix(MODELINE)
        (sweeps / name).write_text(text, encoding="utf-8")
    typo = "sweepspec: 1\nobjective: {function: m:f, metric: loss, mode: min}\ntrails: {}\n"
    (sweeps / "typo.yaml").write_text(typo, encoding="utf-8")
    client = LanguageServer(binary, user_repo, settings)
    try:
        found = shown(client.open(sweeps / "typo.yaml"))
        assert (3, "Property trails is not allowed.") in found, found
        assert shown(client.open(sweeps / "interpolated.yaml")) == []
        assert shown(client.open(sweeps / "small.yaml")) == []
        assert "Trial budget" in client.hover(sweeps / "small.yaml", 6, 1)
    finally:
        client.close()
