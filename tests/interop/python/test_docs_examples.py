"""Every ```python block of docs/clients.md (and of docs/exchange.md) runs, as a script of its own, against a fresh server
(WIGEON_URI points it there) and exits 0; where a ```text block follows it (blank lines between
at most), that is exactly what it must print. A block whose first line reads
`# NAME.py: ... (run after OTHER.py)` runs after OTHER.py's block on the same server. Every library
a block imports (polars included) is pinned in requirements.txt, so no block is skipped.
"""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "clients.md"


def blocks(text):
    """[(line, code, expected output or None, id)] for each ```python block, in order; the id is
    the script's name or the section's heading."""
    lines = text.splitlines()
    found, i, section = [], 0, "top"
    while i < len(lines):
        if lines[i].startswith("## "):
            section = re.sub(r"\W+", "_", lines[i][3:].split(":")[0]).strip("_").lower()
        if lines[i].strip() != "```python":
            i += 1
            continue
        start = i + 1
        end = lines.index("```", start)
        code = "\n".join(lines[start:end]) + "\n"
        j = end + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        expected = None
        if j < len(lines) and lines[j].strip() == "```text":
            out_end = lines.index("```", j + 1)
            expected = "\n".join(lines[j + 1:out_end]) + "\n"
            end = out_end
        found.append((start, code, expected, script_name(code) or f"{section}_line{start}"))
        i = end + 1
    return found


def script_name(code):
    m = re.match(r"#\s*(\w+\.py)\b", code)
    return m.group(1) if m else None


def run_after(code):
    m = re.match(r"#.*\(run after (\w+\.py)\)", code)
    return m.group(1) if m else None


def imported(code):
    return set(re.findall(r"^\s*(?:import|from)\s+(\w+)", code, re.M))


EXAMPLES = blocks(DOC.read_text())
EXCHANGE_EXAMPLES = blocks((ROOT / "docs" / "exchange.md").read_text())
BY_NAME = {script_name(code): code for _, code, _, _ in EXAMPLES + EXCHANGE_EXAMPLES
           if script_name(code)}


def run(code, uri, folder, name):
    path = folder / name
    path.write_text(code)
    env = dict(os.environ, WIGEON_URI=uri)
    proc = subprocess.run([sys.executable, str(path)], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, (f"{name} exited {proc.returncode}\n--- stdout\n{proc.stdout}"
                                  f"\n--- stderr\n{proc.stderr}")
    return proc.stdout


def test_the_doc_has_its_examples():
    """The parser finds the examples (so the test below cannot pass on none), each reads the
    server's address from WIGEON_URI, every "run after" names a block that exists, and every
    module a block imports is installed (pinned in requirements.txt or in the standard library)."""
    assert len(EXAMPLES) >= 8
    for line, code, _, _ in EXAMPLES:
        for module in imported(code):
            assert importlib.util.find_spec(module) is not None, f"line {line}: {module}"
        assert 'os.environ.get("WIGEON_URI", "grpc://127.0.0.1:8815")' in code, f"line {line}"
        assert run_after(code) is None or run_after(code) in BY_NAME, f"line {line}"


@pytest.mark.parametrize("line,code,expected", [e[:3] for e in EXAMPLES],
                         ids=[e[3] for e in EXAMPLES])
def test_example_runs(server, tmp_path, line, code, expected):
    """The block at this line of docs/clients.md runs cleanly against a fresh server and prints
    what the doc says it prints."""
    before = run_after(code)
    if before:
        run(BY_NAME[before], server.uri, tmp_path, before)
    out = run(code, server.uri, tmp_path, script_name(code) or f"example_{line}.py")
    if expected is not None:
        assert out == expected


def test_exchange_doc_has_its_examples():
    """docs/exchange.md has a pyarrow example, with the output it prints, that reads the server's
    address from WIGEON_URI."""
    assert len(EXCHANGE_EXAMPLES) >= 1
    for line, code, expected, _ in EXCHANGE_EXAMPLES:
        assert 'os.environ.get("WIGEON_URI", "grpc://127.0.0.1:8815")' in code, f"line {line}"
        assert expected is not None, f"line {line}"


@pytest.mark.parametrize("line,code,expected", [e[:3] for e in EXCHANGE_EXAMPLES],
                         ids=[e[3] for e in EXCHANGE_EXAMPLES])
def test_exchange_example_runs(server, tmp_path, line, code, expected):
    """The block at this line of docs/exchange.md runs against a fresh server and prints what
    the doc says."""
    test_example_runs(server, tmp_path, line, code, expected)


def test_readme_links_the_clients_doc():
    """README.md points at docs/clients.md."""
    assert "docs/clients.md" in (ROOT / "README.md").read_text()
