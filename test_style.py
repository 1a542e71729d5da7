"""The house rules a reader relies on, checked. The layout: the paper's method flat at the root
(at most ten modules), each capability beyond it in a folder of its own; imports run one way
(the method imports no folder, mapping/ never the benchmarks, synthetic/ neither mapping/ nor
the benchmarks), with no cycle and at most seven floors. The code: no line over 100 bytes, no
function over 60 lines and no module over 450, at most 30 options in refine.py.

    python -m pytest -q test_style.py
"""
import ast
import contextlib
import functools
import io
import os
import subprocess
import sys

import refine

HERE = os.path.dirname(os.path.abspath(__file__))
FOLDERS = ('mapping', 'synthetic', 'bench')
METHOD = ('landslide', 'losses', 'models', 'pseudo', 'refine', 'rundir', 'distributed',
          'report')                                  # the paper and what its loop needs


def code_files():
    """{module name: path} of every module a user runs (tests and conftest aside)."""
    found = {}
    for folder in ('',) + FOLDERS:
        for f in sorted(os.listdir(os.path.join(HERE, folder))):
            if f.endswith('.py') and not f.startswith('test_') and f != 'conftest.py':
                name = f[:-3] if not folder else f'{folder}.{f[:-3]}'
                found[name.removesuffix('.__init__')] = os.path.join(HERE, folder, f)
    return found


MODULES = code_files()


@functools.cache
def imports(name):
    """The project modules `name` imports, at the top or inside functions (a package's module
    imported with `from package import module` counts as that module)."""
    found = set()
    for n in ast.walk(ast.parse(open(MODULES[name]).read())):
        if isinstance(n, ast.Import):
            found |= {a.name for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module:
            found |= {n.module} | {f'{n.module}.{a.name}' for a in n.names}
    return found & set(MODULES) - {name}


@functools.cache
def floor(name, path=()):
    """1 for a module that imports no project module, else one above its highest import."""
    assert name not in path, f"import cycle: {' -> '.join(path[path.index(name):] + (name,))}"
    return 1 + max((floor(m, path + (name,)) for m in imports(name)), default=0)


def top_level_imports(name):
    """The project modules `name` imports when it is imported (not inside functions)."""
    found = set()
    for n in ast.parse(open(MODULES[name]).read()).body:
        if isinstance(n, ast.Import):
            found |= {a.name for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module:
            found |= {n.module} | {f'{n.module}.{a.name}' for a in n.names}
    return found & set(MODULES)


def test_the_root_holds_the_method_and_predict_only():
    root = sorted(m for m in MODULES if '.' not in m and m not in FOLDERS)
    assert root == sorted(METHOD + ('predict',)) and len(root) <= 10, root


def test_no_import_cycle_and_at_most_seven_floors():
    floors = {m: floor(m) for m in MODULES}
    assert max(floors.values()) <= 7, sorted(floors.items(), key=lambda kv: -kv[1])[:5]


def test_imports_run_one_way():
    def folder(m):
        return m.split('.')[0] if m.split('.')[0] in FOLDERS else 'root'
    wrong = []
    for m in MODULES:
        for d in imports(m):
            demo = m == 'refine' and d in ('synthetic', 'synthetic.landscape')   # --demo's data
            if m in METHOD and folder(d) != 'root' and not demo:
                wrong.append(f'{m} -> {d}: the method imports no folder')
            if folder(m) in ('mapping', 'synthetic') and folder(d) == 'bench':
                wrong.append(f'{m} -> {d}: only the benchmarks use the benchmarks')
            if folder(m) == 'mapping' and d == 'predict' or folder(m) == 'synthetic' and \
                    (folder(d) == 'mapping' or d in ('refine', 'predict')):
                wrong.append(f'{m} -> {d}')
            if m != 'predict' and folder(m) == 'root' and folder(d) == 'mapping':
                wrong.append(f'{m} -> {d}: predict.py is the one entry of mapping/')
    assert not wrong, wrong
    assert 'synthetic.landscape' not in top_level_imports('refine')   # --demo's one call: a function


def loaded(module):
    """The modules of the folders and of rasterio that importing `module` loads."""
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in " \
        "('mapping', 'synthetic', 'bench', 'rasterio')))"
    out = subprocess.run([sys.executable, '-c', code], cwd=HERE, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return eval(out.stdout)


def test_importing_the_method_loads_no_folder_and_no_rasterio():
    assert loaded('refine') == []
    assert all(m.split('.')[0] == 'mapping' for m in loaded('predict'))    # mapping, no rasterio


def test_functions_and_modules_fit_on_a_screen():
    long = []
    for m, path in MODULES.items():
        lines = open(path).read().count('\n')
        if lines > 450:
            long.append(f'{m}: {lines} lines')
        for n in ast.walk(ast.parse(open(path).read())):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = n.end_lineno - n.lineno + 1
                if size > 60:
                    long.append(f'{m}.{n.name}: {size} lines')
    assert not long, long


def test_refine_has_at_most_30_options():
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
        refine.parse_args(['--help'])
    ap_help = [ln for ln in out.getvalue().splitlines() if ln.lstrip().startswith('-')]
    assert 10 < len(ap_help) <= 30, len(ap_help)


def test_no_line_over_100_bytes():
    """ruff measures characters and forgives long URLs; a reader's screen does neither."""
    paths = list(MODULES.values()) + [os.path.join(HERE, 'conftest.py')]
    long = [f'{p}:{i}' for p in paths for i, line in enumerate(open(p, 'rb'), 1)
            if len(line.rstrip(b'\n')) > 100]
    assert not long, long
