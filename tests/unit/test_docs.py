"""The docs say what the code does: links resolve, commands parse, names exist.

Every Markdown file of the repository (README, docs/, runbooks, haproxy/, infra/) is read:
- every relative link points at a file that exists, and every ``#anchor`` at a heading;
- every ``swarmdash ...`` command line in a code block or code span parses with the CLI's
  own argument parser;
- every setting a doc names (an upper-case ``NAME`` in code) is a setting of settings.py,
  a docker-compose variable, or one of the few other variables listed below;
- every ``swarmdash_*`` metric a doc, an alert or the Grafana dashboard names is exported
  by metrics.py, and the metric list of protocol.md is the registry's;
- README's command table has every command, action and flag (and all of a flag's choices
  when it lists some).
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from functools import cache
from pathlib import Path

import pytest

from swarmdash.cli import build_parser
from swarmdash.metrics import REGISTRY
from swarmdash.settings import describe
from tests.helpers import ROOT
from tests.ops.promql import SYNTHETIC, metric_names, registry_series

DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md"),
               ROOT / "haproxy" / "README.md", *(ROOT / "infra").rglob("*.md"),
               ROOT / "tests" / "fuzz" / "README.md"])
#: Files whose ``swarmdash_*`` names must exist besides the docs: alert rules, dashboards.
OPS_FILES = [ROOT / "infra" / "prometheus" / "alerts.yml",
             *(ROOT / "infra" / "grafana" / "dashboards").glob("*.json")]

#: Upper-case names docs may use that are not node settings, and why.
OTHER_VARIABLES = {
    "SWARMDASH_ENV_FILE": "where settings.py reads .env from",
    "SWARMDASH_REPO": "where `swarmdash cluster` finds the checkout",
    "SWARMDASH_CHAOS": "size of the chaos suite",
    "SWARMDASH_FUZZ_EXAMPLES": "examples per fuzz test",
    "SWARMDASH_KEY": "the README's shell variable for an API key",
    "SWARMDASH_TOKEN": "the runbooks' shell variable for a viewer token",
    "SWARMDASH_HAPROXY_SOCKET": "haproxy.cfg's variables, set by compose and the local cluster",
    "SWARMDASH_DNS": "", "SWARMDASH_HTTP_BIND": "", "SWARMDASH_HTTPS_BIND": "",
    "SWARMDASH_PLAIN_BIND": "", "SWARMDASH_STATS_BIND": "", "SWARMDASH_TLS_CERT": "",
    "SWARMDASH_NODES_FQDN": "", "SWARMDASH_NODE_PORT": "",
    "SWARMDASH_NODE": "HAProxy's stickiness cookie",
    "SWARMDASH_REDIS_ADDRESS": "infra/secrets/generate.sh's Redis hosts, for Kubernetes",
    "SWARMDASH_SENTINEL_ADDRESSES": "",
    "SWARMDASH_ROUTE": "Apache's stickiness cookie",
    "SWARMDASH_MAX_FAILS": "nginx/render.sh's options", "SWARMDASH_FAIL_TIMEOUT": "",
    "SWARMDASH_DOCS_SCREENSHOT": "the browser test that refreshes the README's picture",
    "SWARMDASH_FUZZ_LIVE_EXAMPLES": "examples per live fuzz test",
    "MIN_SECRET_KEY_LENGTH": "settings.py's checks of SECRET_KEY", "MIN_SECRET_KEY_BITS": "",
    "PER_MESSAGE_DEFLATE": "the benchmark's Node.js peer (bench/peers/node/server.mjs)",
}
#: Upper-case words in code that are not variables at all.
NOT_VARIABLES = re.compile(
    r"^(HTTP_\w+|X_\w+|RSV\d|AOF\w*|TLS\w*|SIGKILL|SIGTERM|SIGHUP|SIGUSR\d|EADDRINUSE|"
    r"MAINT|DRAIN|UP|DOWN|NOLRM|L\d\w+|PEXPIRE|XADD|XREAD\w*|HSET|HMGET|EVALSHA|SCAN|"
    r"PUBLISH|SUBSCRIBE|XTRIM|MAXLEN|ZADD|INFO|PING|CONFIG|BGREWRITEAOF|DEBUG|SLEEP|"
    r"CLIENT_\w*|[A-Z]{1,3}\d*)$")

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
SPAN = re.compile(r"(?<!`)`([^`\n]+(?:\n[^`\n]+)?)`(?!`)")
#: ``swarmdash`` run as a command in a shell line: at its start (after variables and sudo),
#: after a path ending in bin/, or in ``$(...)``.
COMMAND = re.compile(r"(?:^\s*(?:\$\s+)?(?:sudo\s+(?:-u\s+\S+\s+)?)?(?:[A-Z_][A-Z0-9_]*=\S*\s+)*"
                     r"(?:\S*bin/)?|\$\((?:\S*bin/)?)swarmdash[ \t]+([^\n]*)")
#: Placeholders of usage lines (README's table): such a span documents flags, not a command.
USAGE = re.compile(r"[\[\]|…]|\.\.\.|\b[A-Z][A-Z_]+\b(?!=)")
SHELL_END = re.compile(r"\s(?:\||&&|;|&|>|2>|<)\s|[)`]|\s&$")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def without_code(text: str) -> str:
    return SPAN.sub("``", FENCE.sub("", text))


def code_blocks(text: str) -> list[str]:
    return [m.group(0) for m in FENCE.finditer(text)]


def code_spans(text: str) -> list[str]:
    return [m.group(1) for m in SPAN.finditer(FENCE.sub("", text))]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text.replace("`", "")).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        m = re.match(r"^#{1,6}\s+(.+?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    out |= set(re.findall(r'<a (?:name|id)="([^"]+)"', path.read_text()))
    return frozenset(out)


def broken_links(path: Path) -> list[str]:
    problems = []
    for m in LINK.finditer(without_code(path.read_text())):
        target = m.group(1) or m.group(2)
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{rel(path)}: {target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{rel(path)}: {target}: no heading #{anchor} in {rel(dest)}")
    return problems


@pytest.mark.parametrize("path", DOCS, ids=rel)
def test_every_link_and_anchor_resolves(path: Path) -> None:
    assert not broken_links(path)


def test_the_link_check_catches_a_missing_file_and_anchor(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title\n\n## Running it\n\n[x](b.md) [y](#running-it) "
                                   "[z](#running) `[not](c.md)`\n")
    assert broken_links(tmp_path / "a.md") == ["a.md: b.md: no such file",
                                               "a.md: #running: no heading #running in a.md"]


# --- command lines ------------------------------------------------------------------------

def command_lines(text: str) -> list[str]:
    """The arguments of every ``swarmdash ...`` line of a doc's shell code blocks."""
    found = []
    for block in code_blocks(text):
        joined = re.sub(r"\s*\\\n\s*", " ", block)  # shell line continuations
        for line in joined.splitlines()[1:-1]:
            found += [m.group(1) for m in COMMAND.finditer(line)]
    return found


def mentions(text: str) -> list[str]:
    """The arguments of ``swarmdash ...`` code spans in a doc's prose."""
    out = []
    for span in code_spans(text):
        span = " ".join(span.split())
        if span.startswith("swarmdash ") and not USAGE.search(span.removeprefix("swarmdash ")):
            out.append(span.removeprefix("swarmdash "))
    return out


def parse_error(args: str) -> str | None:
    """Why the CLI would refuse ``swarmdash ARGS`` (None: it parses)."""
    args = SHELL_END.split(args, maxsplit=1)[0]
    try:
        argv = shlex.split(args, comments=True)
    except ValueError as exc:
        return f"not a shell line: {exc}"
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        return None if exc.code == 0 else f"exit {exc.code}"
    return None


def _choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def mention_error(args: str) -> str | None:
    """Why a mention such as ``cluster down --dir D`` or ``publish --url`` names a command
    or a flag the CLI does not have (it need not be complete)."""
    parser = build_parser()
    words = iter(shlex.split(args))
    for word in words:
        commands = _choices(parser)
        if word.startswith("--"):
            for flag in word.split("=")[0].split("/"):
                action = parser._option_string_actions.get(flag)
                if action is None:
                    return f"{parser.prog} has no {flag}"
            if action.nargs != 0 and "=" not in word:
                next(words, None)  # the flag's value
        elif commands:
            if word not in commands:
                return f"{parser.prog} has no command {word!r}"
            parser = commands[word]
    return None


@pytest.mark.parametrize("path", DOCS, ids=rel)
def test_every_command_line_parses(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = path.read_text()
    bad = []
    for args in command_lines(text):
        error = parse_error(args)
        if error:
            bad.append(f"swarmdash {args}: {error}: {capsys.readouterr().err.strip()}")
    bad += [f"`swarmdash {args}`: {error}" for args in mentions(text)
            if (error := mention_error(args))]
    assert not bad, "\n".join(bad)


def test_the_command_check_catches_a_command_that_does_not_parse() -> None:
    doc = ("```sh\nswarmdash cluster --dir d down   # stop\nswarmdash watch --since x\n"
           ".venv/bin/swarmdash cluster up \\\n  --nodes 3 --prometheus\n"
           "export T=$(swarmdash token --all-swarms)\nsudo useradd -d /opt/swarmdash swarmdash\n"
           "SWARMDASH_ENV_FILE=x swarmdash cluster down --dir d\n```\n")
    lines = command_lines(doc)
    assert lines == ["cluster --dir d down   # stop", "watch --since x",
                     "cluster up --nodes 3 --prometheus", "token --all-swarms)",
                     "cluster down --dir d"]
    assert [parse_error(args) is None for args in lines] == [True, False, True, True, True]
    spans = mentions("Run `swarmdash cluster status --json`, `swarmdash publish --url`, "
                     "`swarmdash tokens` or `swarmdash watch --since`; "
                     "`swarmdash serve [--port P]` is usage.")
    assert spans == ["cluster status --json", "publish --url", "tokens", "watch --since"]
    assert [mention_error(args) is None for args in spans] == [True, True, False, False]


# --- settings -----------------------------------------------------------------------------

SETTINGS = {row[0] for row in describe()}


def compose_variables() -> set[str]:
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))


def named_variables(text: str) -> set[str]:
    """Upper-case names with an underscore in a doc's code: the variables it names."""
    names = set()
    for code in code_blocks(text) + code_spans(text):
        for m in re.finditer(r"(?<![\w$.{/-])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?![\w(])", code):
            if not NOT_VARIABLES.match(m.group(1)):
                names.add(m.group(1))
    return names


@pytest.mark.parametrize("path", DOCS, ids=rel)
def test_every_setting_a_doc_names_exists(path: Path) -> None:
    known = (SETTINGS | {f"{name}_FILE" for name in SETTINGS}  # a setting from a file
             | compose_variables() | set(OTHER_VARIABLES))
    unknown = named_variables(path.read_text()) - known
    assert not unknown, (f"{rel(path)} names {sorted(unknown)}: not in settings.py (add it, "
                         "fix the doc, or list it in OTHER_VARIABLES)")


def test_the_setting_check_catches_an_unknown_name() -> None:
    assert named_variables("Set `WEBSOCKET_PING_TIMEOUT` and `REDIS_TIMEOUT_MS=5`.\n"
                           "```sh\nexport MAX_CLIENTS=9\n```\n") == {
        "WEBSOCKET_PING_TIMEOUT", "REDIS_TIMEOUT_MS", "MAX_CLIENTS"}
    assert {"REDIS_TIMEOUT_MS", "MAX_CLIENTS"} - SETTINGS


# --- metrics ------------------------------------------------------------------------------

@cache
def exported() -> frozenset[str]:
    return frozenset(registry_series(REGISTRY) | SYNTHETIC)


def named_metrics(text: str) -> set[str]:
    return set(re.findall(r"(?<![$\w])((?:swarmdash|process)_[a-z][a-z0-9_]*)\b(?![.(])", text))


@pytest.mark.parametrize("path", DOCS + OPS_FILES, ids=rel)
def test_every_metric_named_exists(path: Path) -> None:
    text = path.read_text()
    if path.suffix == ".json":  # a dashboard: the metrics its queries read
        text = " ".join(" ".join(metric_names(t["expr"])) for p in json.loads(text)["panels"]
                        for t in p.get("targets", []))
    unknown = {name for name in named_metrics(text)
               if name not in exported() and name not in _not_metrics()}
    assert not unknown, f"{rel(path)} names metrics metrics.py does not export: {unknown}"


def _not_metrics() -> set[str]:
    """``swarmdash_*`` words that are not metrics: the viewer's cookie, nginx's upstreams,
    histogram families (named by their base name, as in ``histogram_quantile`` prose)."""
    upstreams = {m for conf in (ROOT / "nginx").iterdir()
                 for m in re.findall(r"upstream\s+(\w+)", conf.read_text())}
    return ({"swarmdash_token"} | upstreams
            | {f.name for f in REGISTRY.collect() if f.type == "histogram"})


def test_the_metric_list_of_protocol_md_is_the_registry() -> None:
    text = (ROOT / "docs" / "protocol.md").read_text()
    section = text[text.index("### `GET /metrics`"):text.index("## Socket.IO")]
    listed = {m.group(1) for m in re.finditer(r"`([a-z_]+)(?:\{[a-z_,]+\})?`", section)}
    series = {f"swarmdash_{n}" for n in listed} | listed
    missing = [f.name for f in REGISTRY.collect() if f.name.startswith("swarmdash_")
               and not series & {f.name, f"{f.name}_total", f"{f.name}_info"}]
    assert not missing, f"docs/protocol.md does not list {missing}"
    label_values = {"rate_limited", "node_full", "ts"}  # words of the prose, not metrics
    unknown = {n for n in listed - label_values
               if not {n, f"swarmdash_{n}"} & set(exported())
               and f"swarmdash_{n}" not in {f.name for f in REGISTRY.collect()}}
    assert not unknown, f"docs/protocol.md lists metrics metrics.py does not export: {unknown}"


# --- README's command table ---------------------------------------------------------------

def command_table() -> dict[str, str]:
    """README's "Command line" table: command -> the first cell of its row."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Command line"):]
    section = section[:section.index("\n## ", 1)]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cell = line.split(" | ")[0].removeprefix("| ")
        found = re.match(r"`swarmdash (\w[\w-]*)", cell)
        if found:
            rows[found.group(1)] = cell.replace("\\|", "|")
    return rows


def table_gaps(parser: argparse.ArgumentParser, rows: dict[str, str]) -> list[str]:
    """What a command table leaves out: a command, a flag, an action, or some of a flag's
    choices when it lists others."""
    gaps = []
    for name, command in _choices(parser).items():
        row = rows.get(name)
        if row is None:
            gaps.append(f"no row for `swarmdash {name}`")
            continue
        parsers = [command, *_choices(command).values()]
        gaps += [f"{name}: no {action}" for action in _choices(command) if action not in row]
        for sub in parsers:
            for action in sub._actions:
                flags = [f for f in action.option_strings if f.startswith("--")]
                if not flags or flags[0] == "--help" or (sub is not command and (
                        flags[0].endswith("-port") or flags[0] in ("--net", "--env", "--json"))):
                    continue  # every command has --help; up's ports are in its --help
                if not any(f in row for f in flags):
                    gaps.append(f"{name}: no {flags[0]}")
                listed = [c for c in action.choices or () if re.search(
                    rf"(?<![\w-]){re.escape(str(c))}(?![\w-])", row)]
                if listed and len(listed) < len(action.choices or ()):
                    gaps.append(f"{name}: {flags[0]} lists {listed}, not all of "
                                f"{list(action.choices or ())}")
    return list(dict.fromkeys(gaps))  # --dir of every cluster action: said once


def test_readme_command_table_has_every_command_and_flag() -> None:
    assert not table_gaps(build_parser(), command_table())


def test_the_table_check_catches_what_was_missing() -> None:
    rows = command_table()
    rows["cluster"] = rows["cluster"].replace("`kill-node NAME`, ", "").replace("\\|none", "")
    rows["cluster"] = rows["cluster"].replace("|none", "")
    rows["watch"] = rows["watch"].replace(" [--token T]", "")
    del rows["token"]
    assert table_gaps(build_parser(), rows) == [
        "watch: no --token", "cluster: no kill-node",
        "cluster: --stickiness lists ['source', 'cookie'], not all of "
        "['source', 'cookie', 'none']", "no row for `swarmdash token`"]


# --- the module map of architecture.md ------------------------------------------------------
ARCHITECTURE = ROOT / "docs" / "architecture.md"
PACKAGE = ROOT / "services" / "swarmdash"
_MAP_LINE = re.compile(r"^(?P<indent> *)(?P<name>[\w.-]+/?)(?:\s{2,}\S.*)?$")
#: Kinds of files the map must name one by one; a folder of anything else (pages, scripts,
#: styles) is named as a whole.
_MAPPED = (".py", ".lua")


def module_map(doc: Path) -> set[str]:
    """Paths, relative to the package, that the first code block under "## Module map" names.

    The block starts with ``swarmdash/``; below it each line is ``<indent><name>  <what it
    is>``, two more spaces of indent per folder level; a folder's name ends with ``/``.
    """
    block = doc.read_text().split("## Module map", 1)[1].split("```", 2)[1]
    named: set[str] = set()
    folders: list[str] = []
    for line in block.splitlines()[2:]:
        m = _MAP_LINE.match(line)
        if not m:
            continue
        level = len(m.group("indent")) // 2 - 1
        folders = folders[:level]
        name = m.group("name")
        named.add("/".join([*folders, name]))
        if name.endswith("/"):
            folders.append(name.rstrip("/"))
    return named


def module_map_problems(doc: Path, package: Path) -> list[str]:
    """What the module map names that does not exist, and what exists that it does not name.

    Every ``.py`` (but ``__init__.py``) and ``.lua`` file must be named, with its folder; a
    folder named with nothing below it (pages, scripts) stands for all it holds.
    """
    named = module_map(doc)
    whole = {n for n in named if n.endswith("/") and not any(
        other.startswith(n) and other != n for other in named)}
    have = {f for f in whole if (package / f).is_dir()}
    for path in package.rglob("*"):
        rel_path = path.relative_to(package).as_posix()
        if (path.suffix not in _MAPPED or path.name == "__init__.py"
                or any(rel_path.startswith(f) for f in whole)):
            continue
        have.add(rel_path)
        have.update(f"{parent.as_posix()}/" for parent in Path(rel_path).parents
                    if parent != Path("."))
    return ([f"named but missing: {n}" for n in sorted(named - have)]
            + [f"not named: {h}" for h in sorted(have - named)])


def test_the_module_map_matches_the_tree() -> None:
    assert not module_map_problems(ARCHITECTURE, PACKAGE)


def test_the_module_map_check_catches_a_missing_and_a_stale_module(tmp_path: Path) -> None:
    package = tmp_path / "swarmdash"
    (package / "eventlog").mkdir(parents=True)
    (package / "static" / "vendor").mkdir(parents=True)
    for name in ("__init__.py", "api.py", "relay.py", "eventlog/__init__.py",
                 "eventlog/redis.py", "eventlog/ingest.lua", "static/page.js",
                 "static/vendor/lib.js"):
        (package / name).write_text("")
    doc = tmp_path / "architecture.md"
    doc.write_text("# A\n\n## Module map\n\n```\nswarmdash/\n  api.py      HTTP\n"
                   "  sockets.py  handlers\n  eventlog/   the log\n    redis.py  streams\n"
                   "    ingest.lua  atomic append\n  static/     the page\n```\n")
    assert module_map_problems(doc, package) == ["named but missing: sockets.py",
                                                 "not named: relay.py"]
