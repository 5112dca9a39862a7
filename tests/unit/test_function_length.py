"""No function over 60 lines in the repository's Python (the virtualenv aside): a longer one is split
into named steps."""
import ast
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 60
SKIPPED = {".venv", ".venv-tools", ".git", ".dev", "build", "dist", "artifacts", "node_modules"}


def python_files() -> list[Path]:
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if name not in SKIPPED]
        found += [Path(folder, name) for name in files if name.endswith(".py")]
    return sorted(found)


def long_functions(path: Path) -> list[str]:
    """`path:line name (n lines)` for each function of the file, nested ones too, longer than LIMIT."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)"
            for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            if (n := node.end_lineno - node.lineno + 1) > LIMIT]


def test_no_function_is_over_60_lines():
    files = python_files()
    assert any(p.name == "test_function_length.py" for p in files)  # the walk found the tree
    found = [entry for path in files for entry in long_functions(path)]
    assert not found, f"functions over {LIMIT} lines (split them into named steps):\n" + "\n".join(found)
