"""Every ```python block of docs/flightsql.md runs, as a script of its own, against a fresh server
(WIGEON_URI points it there) and exits 0; where a ```text block follows it (blank lines between
at most), that is exactly what it must print. A block whose first line reads
`# NAME.py: ... (run after OTHER.py)` runs after OTHER.py's block on the same server.

A block with a line `# NOT SERVED YET: WHAT` shows a part of Flight SQL that main does not serve
yet: it must fail (xfail, naming WHAT); once it runs cleanly and prints what the doc says, this
test fails, asking for the line to go (and the doc's "on main" column to say "served"). A block
that runs but prints something else fails as any other block does.

Uses the same block parser as test_docs_examples.py (docs/clients.md).
"""

import importlib.util
import re

import pytest

from test_docs_examples import ROOT, blocks, imported, run, run_after, script_name

DOC = ROOT / "docs" / "flightsql.md"
EXAMPLES = blocks(DOC.read_text())
BY_NAME = {script_name(code): code for _, code, _, _ in EXAMPLES if script_name(code)}


def not_served(code):
    m = re.search(r"^# NOT SERVED YET: (.+)$", code, re.M)
    return m.group(1).strip() if m else None


def test_the_doc_has_its_examples():
    """The parser finds the examples (so the test below cannot pass on none), each reads the
    server's address from WIGEON_URI, every "run after" names a block that exists and is served,
    and every module a block imports is installed."""
    assert len(EXAMPLES) >= 8
    assert sum(1 for _, code, _, _ in EXAMPLES if not not_served(code)) >= 4
    for line, code, _, _ in EXAMPLES:
        for module in imported(code):
            assert importlib.util.find_spec(module) is not None, f"line {line}: {module}"
        assert 'os.environ.get("WIGEON_URI", "grpc://127.0.0.1:8815")' in code, f"line {line}"
        before = run_after(code)
        assert before is None or before in BY_NAME, f"line {line}"
        assert before is None or not not_served(BY_NAME[before]), f"line {line}"


@pytest.mark.parametrize("line,code,expected", [e[:3] for e in EXAMPLES],
                         ids=[e[3] for e in EXAMPLES])
def test_example_runs(server, tmp_path, line, code, expected):
    """The block at this line of docs/flightsql.md runs cleanly against a fresh server and prints
    what the doc says it prints (or, marked NOT SERVED YET, fails)."""
    before = run_after(code)
    if before:
        run(BY_NAME[before], server.uri, tmp_path, before)
    name = script_name(code) or f"example_{line}.py"
    pending = not_served(code)
    try:
        out = run(code, server.uri, tmp_path, name)
    except AssertionError as e:
        if pending:
            pytest.xfail(f"not served on main yet: {pending}: {str(e)[-300:]}")
        raise
    if expected is not None:
        assert out == expected
    assert not pending, (f"docs/flightsql.md line {line}: {name} runs and prints what the doc says, "
                         f"but is marked '# NOT SERVED YET: {pending}': remove the line and say "
                         f"'served' in the doc's table")


def test_readme_links_the_flightsql_doc():
    """README.md points at docs/flightsql.md."""
    assert "docs/flightsql.md" in (ROOT / "README.md").read_text()
