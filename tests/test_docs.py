"""The documentation cannot fall behind the code or point nowhere.

* Every relative link (and ``#anchor``) in the repository's top-level markdown
  files and ``docs/*.md`` resolves to a file inside the repository (and a
  heading), so the docs read the same in a fresh clone.
* Every parameter table in ``docs/<system>.md`` is marked with the dataclass it
  documents (``<!-- fields: module.Class -->`` right before the table); its rows
  are exactly the fields the class defines and its default column holds the
  code's defaults, formatted by :func:`format_value`. Each system's params and
  config dataclasses must have such a table.
* Every code span that names a jaxtwin object (``coevodt.env.transition``,
  ``jaxtwin.civic.model.immersion``) resolves to that object.

``python -m tests.test_docs module.Class`` prints a table skeleton for a class
(field, default, the field's ``help`` text) to start a new table from.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TOP_LEVEL = ("README.md", "CONTRIBUTING.md", "BENCHMARKS.md")

# the dataclasses each page must document (one marked table each)
REQUIRED_TABLES = {
    "coevodt.md": ("jaxtwin.coevodt.env.EnvParams", "jaxtwin.coevodt.protocol.ProtocolConfig",
                   "jaxtwin.coevodt.forecast.ForecastConfig", "jaxtwin.coevodt.experiments.CoEvoDTConfig"),
    "civic.md": ("jaxtwin.civic.model.RoomTable", "jaxtwin.civic.model.ModelConstants",
                 "jaxtwin.civic.env.EnvParams", "jaxtwin.civic.agents.AgentConfig",
                 "jaxtwin.civic.config.CivicConfig", "jaxtwin.learn.ppo.PPOConfig"),
    "syncgame.md": ("jaxtwin.syncgame.params.SyncParams", "jaxtwin.syncgame.pmp.SolverOptions",
                    "jaxtwin.syncgame.collocation.CollocationOptions",
                    "jaxtwin.syncgame.experiments.SyncGameConfig"),
}

SYSTEM_PACKAGES = ("core", "nets", "learn", "coevodt", "civic", "syncgame")
FILE_SUFFIXES = ("md", "py", "csv", "png", "json", "toml", "msgpack", "txt", "ipynb")


# ------------------------------------------------------------ markdown parsing
def strip_code_blocks(text: str) -> str:
    """``text`` with fenced code blocks blanked (line count kept)."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            out.append("")
            continue
        out.append("" if fenced else line)
    return "\n".join(out)


def code_spans(text: str) -> list[str]:
    """Contents of the inline code spans outside fenced blocks."""
    return re.findall(r"`([^`\n]+)`", strip_code_blocks(text))


def links(text: str) -> list[str]:
    """Link targets (inline, image and reference-style) outside code."""
    prose = re.sub(r"`[^`\n]*`", "", strip_code_blocks(text))
    found = re.findall(r"\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", prose)
    found += re.findall(r"^\s*\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s|$)", prose, flags=re.M)
    return found


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    s = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Anchors of every heading of a markdown text (duplicates get ``-1``, ``-2``, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for line in strip_code_blocks(text).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = github_slug(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def broken_links(md: Path, root: Path = ROOT) -> list[str]:
    """Human-readable problems with the relative links of one markdown file."""
    problems = []
    text = md.read_text(encoding="utf-8")
    for target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I):   # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        dest = (md.parent / path_part).resolve() if path_part else md.resolve()
        if dest != root and root not in dest.parents:
            problems.append(f"{md.name}: {target!r} points outside the repository")
            continue
        if not dest.exists():
            problems.append(f"{md.name}: {target!r} -> {dest} does not exist")
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text(encoding="utf-8")):
            problems.append(f"{md.name}: {target!r}: no heading with anchor #{anchor} in {dest.name}")
    return problems


# ------------------------------------------------------------ parameter tables
def format_value(v):
    """How a default is written in the docs' tables (``None`` for nested dataclasses,
    which have their own table). Floats use Python's shortest repr with the exponent's
    leading zeros dropped (``1e-8``, ``0.0001``); strings appear bare."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return None
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return re.sub(r"e([+-])0*(\d)", r"e\1\2", repr(v))
    if isinstance(v, str):
        return v
    if isinstance(v, tuple):
        inner = ", ".join(format_value(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    raise TypeError(f"format_value: no documented format for {type(v).__name__} {v!r}")


def load(dotted: str):
    """The object named by a dotted path (longest importable module prefix, then attributes)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ModuleNotFoundError(dotted)


def own_fields(cls) -> list[dataclasses.Field]:
    """Fields ``cls`` adds to its dataclass bases (the rows of its own table)."""
    inherited = set()
    for base in cls.__mro__[1:]:
        inherited |= set(getattr(base, "__dataclass_fields__", {}))
    return [f for f in dataclasses.fields(cls) if f.name not in inherited]


def code_defaults(cls, spec: dict) -> dict[str, tuple]:
    """``{field: (value, ...)}`` the table must show, per the marker's options.

    ``values=fn``: ``fn()`` maps fields to tuples (one column each);
    ``defaults=fn``: the defaults of ``fn``'s keyword parameters; otherwise the
    dataclass defaults (fields without one map to ``()``: only the row is checked).
    """
    if "values" in spec:
        return {k: tuple(v) for k, v in load(spec["values"])().items()}
    if "defaults" in spec:
        sig = inspect.signature(load(spec["defaults"]))
        return {n: (p.default,) for n, p in sig.parameters.items()
                if p.default is not inspect.Parameter.empty}
    out = {}
    for f in own_fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = (f.default,)
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = (f.default_factory(),)
        else:
            out[f.name] = ()
    return out


def marked_tables(text: str) -> list[tuple[str, dict, list[list[str]]]]:
    """``(class path, options, body rows as cells)`` for every ``<!-- fields: ... -->`` marker."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        m = re.match(r"^\s*<!--\s*fields:\s*(\S+)((?:\s+\w+=\S+)*)\s*-->\s*$", line)
        if not m:
            continue
        opts = dict(re.findall(r"(\w+)=(\S+)", m.group(2)))
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        table = []
        while j < len(lines) and lines[j].lstrip().startswith("|"):
            table.append([c.strip() for c in lines[j].strip().strip("|").split("|")])
            j += 1
        out.append((m.group(1), opts, table[2:]))  # skip header and separator
    return out


def first_code_span(cell: str):
    m = re.search(r"`([^`]*)`", cell)
    return m.group(1) if m else None


def table_problems(page: str) -> list[str]:
    """Every mismatch between one page's marked tables and the code."""
    text = (DOCS / page).read_text(encoding="utf-8")
    problems = []
    tables = {path: (opts, rows) for path, opts, rows in marked_tables(text)}
    for path in REQUIRED_TABLES[page]:
        if path not in tables:
            problems.append(f"{page}: no table marked <!-- fields: {path} -->")
    for path, (opts, rows) in tables.items():
        cls = load(path)
        expected = code_defaults(cls, opts)
        names = [f.name for f in own_fields(cls)]
        documented = {}
        for row in rows:
            name = first_code_span(row[0])
            if name is None:
                problems.append(f"{page}: {path}: row without a `field` in its first cell: {row}")
                continue
            documented[name] = row
        for name in names:
            if name not in documented:
                problems.append(f"{page}: {path}.{name} is not in its table")
        for name, row in documented.items():
            if name not in names:
                problems.append(f"{page}: {path} has no field {name!r} (table row {row[0]})")
                continue
            if not row[-1] or row[-1] in ("", "-"):
                problems.append(f"{page}: {path}.{name}: empty meaning")
            for k, value in enumerate(expected.get(name, ())):
                want = format_value(value)
                if want is None:
                    continue
                got = first_code_span(row[1 + k]) if 1 + k < len(row) else None
                if got != want:
                    problems.append(f"{page}: {path}.{name}: table says {got!r}, code says {want!r}")
    return problems


# ------------------------------------------------------------------- tests
def markdown_files() -> list[Path]:
    files = [ROOT / n for n in TOP_LEVEL if (ROOT / n).exists()]
    return files + sorted(DOCS.glob("*.md"))


@pytest.mark.parametrize("md", markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(md):
    assert broken_links(md) == []


def test_link_checker_catches_bad_links(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Model: state & dynamics\n\n## Step 2\n", encoding="utf-8")
    md = tmp_path / "README.md"
    md.write_text(
        "[ok](docs/a.md) [ok](docs/a.md#model-state--dynamics) [ok](docs/a.md#step-2) [web](https://x.org/y)\n"
        "[gone](docs/b.md) [no anchor](docs/a.md#nothing) [outside](../shared/spec/x.md)\n"
        "`[in code](docs/none.md)`\n\n```\n[fenced](docs/none.md)\n```\n", encoding="utf-8")
    problems = broken_links(md, root=tmp_path)
    assert len(problems) == 3, problems
    assert "docs/b.md" in problems[0] and "#nothing" in problems[1] and "outside" in problems[2]


def test_every_page_exists_and_readme_lists_it():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in REQUIRED_TABLES:
        assert (DOCS / page).exists(), page
        assert f"(docs/{page})" in readme, f"README does not link docs/{page}"


@pytest.mark.parametrize("page", sorted(REQUIRED_TABLES))
def test_parameter_tables_match_the_code(page):
    assert table_problems(page) == []


def test_table_check_catches_drift(tmp_path, monkeypatch):
    """A table missing a field, naming a field the class lacks, or with a wrong default fails."""
    page = "civic.md"
    text = (DOCS / page).read_text(encoding="utf-8")
    good = table_problems(page)
    bad = text.replace("| `p_req` |", "| `p_rq` |", 1).replace("| `threshold` | `0.85`", "| `threshold` | `0.8`", 1)
    assert bad != text
    monkeypatch.setattr(sys.modules[__name__], "DOCS", tmp_path)
    (tmp_path / page).write_text(bad, encoding="utf-8")
    found = table_problems(page)
    assert len(found) == len(good) + 3, found
    assert any("p_req is not in its table" in p for p in found)
    assert any("no field 'p_rq'" in p for p in found)
    assert any("threshold: table says '0.8'" in p for p in found)


@pytest.mark.parametrize("page", sorted(REQUIRED_TABLES))
def test_code_references_resolve(page):
    """``module.function`` names in code spans exist (``jaxtwin.`` prefix optional)."""
    pattern = re.compile(r"^(?:jaxtwin\.)?(?:%s)\.[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?:\(\))?$"
                         % "|".join(SYSTEM_PACKAGES))
    missing, checked = [], 0
    for span in code_spans((DOCS / page).read_text(encoding="utf-8")):
        if not pattern.match(span) or span.rsplit(".", 1)[-1] in FILE_SUFFIXES:
            continue
        name = span.removesuffix("()")
        name = name if name.startswith("jaxtwin.") else f"jaxtwin.{name}"
        checked += 1
        try:
            load(name)
        except (ImportError, AttributeError):
            missing.append(span)
    assert checked >= 20, f"{page}: only {checked} code references; the page should map equations to code"
    assert missing == [], f"{page}: these names do not exist: {missing}"


# ------------------------------------------------------------------- skeletons
def table_skeleton(path: str) -> str:
    """A markdown table (marker, field, default, help) for the dataclass at ``path``."""
    cls = load(path)
    defaults = code_defaults(cls, {})
    rows = [f"<!-- fields: {path} -->", "", "| field | default | meaning |", "|---|---|---|"]
    for f in own_fields(cls):
        vals = defaults.get(f.name, ())
        cell = f"`{format_value(vals[0])}`" if vals and format_value(vals[0]) is not None else "see below"
        rows.append(f"| `{f.name}` | {cell} | {f.metadata.get('help', '')} |")
    return "\n".join(rows)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(table_skeleton(arg), end="\n\n")
