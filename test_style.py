"""The house rules a reader relies on, checked: no import cycle among the modules, no line over
100 bytes, no function over 60 lines and no module over 450 in the code a user runs, at most
30 options in refine.py.

    python -m pytest -q test_style.py
"""
import ast
import os

import refine

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = sorted(f[:-3] for f in os.listdir(HERE)
                 if f.endswith('.py') and not f.startswith('test_') and f != 'conftest.py')


def tree(name):
    return ast.parse(open(os.path.join(HERE, name + '.py')).read())


def imports(name):
    """The project modules `name` imports, at the top or inside functions."""
    found = set()
    for n in ast.walk(tree(name)):
        if isinstance(n, ast.Import):
            found |= {a.name.split('.')[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module:
            found.add(n.module.split('.')[0])
    return found & set(MODULES) - {name}


def test_no_import_cycle():
    graph = {m: imports(m) for m in MODULES}
    done, path = set(), []

    def visit(m):
        assert m not in path, f"import cycle: {' -> '.join(path[path.index(m):] + [m])}"
        if m in done:
            return
        path.append(m)
        for d in graph[m]:
            visit(d)
        path.pop()
        done.add(m)
    for m in MODULES:
        visit(m)


def test_functions_and_modules_fit_on_a_screen():
    long = []
    for m in MODULES:
        lines = open(os.path.join(HERE, m + '.py')).read().count('\n')
        if lines > 450:
            long.append(f'{m}.py: {lines} lines')
        for n in ast.walk(tree(m)):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = n.end_lineno - n.lineno + 1
                if size > 60:
                    long.append(f'{m}.{n.name}: {size} lines')
    assert not long, long


def test_refine_has_at_most_30_options():
    ap_help = []
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
        refine.parse_args(['--help'])
    ap_help = [ln for ln in out.getvalue().splitlines() if ln.lstrip().startswith('-')]
    assert 10 < len(ap_help) <= 30, len(ap_help)


def test_no_line_over_100_bytes():
    """ruff measures characters and forgives long URLs; a reader's screen does neither."""
    long = [f'{m}.py:{i}' for m in MODULES + ['conftest']
            for i, line in enumerate(open(os.path.join(HERE, m + '.py'), 'rb'), 1)
            if len(line.rstrip(b'\n')) > 100]
    assert not long, long
