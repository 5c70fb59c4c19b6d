"""The original study's templates for tests, and its generator itself for the byte-equality
test: the package's `__init__` imports inspect_ai (not installed with --no-deps), so the
generator's two modules are loaded from their files under throwaway parent packages."""

from __future__ import annotations

import importlib.util
import sys
import types
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from amlab.original.source import STUDY_DIR, TemplateSource


def study_folder(source: TemplateSource, scratch: Path) -> Path:
    """A folder holding the study's files: the source's own, or the wheel's unpacked."""
    if source.kind != "wheel":
        return Path(source.location)
    with zipfile.ZipFile(source.location) as wheel:
        members = [m for m in wheel.namelist() if m.startswith(f"{STUDY_DIR}/")]
        wheel.extractall(scratch, members)
    return scratch / STUDY_DIR


@contextmanager
def original_generator(folder: Path) -> Iterator[Any]:
    """The original `prompt_generator` module, loaded from `folder`; sys.modules is
    restored afterwards."""
    names = ["inspect_evals", "inspect_evals.agentic_misalignment",
             "inspect_evals.agentic_misalignment.templates"]
    saved = {name: sys.modules.get(name) for name in
             [*names, f"{names[2]}.system_prompt_templates", f"{names[1]}.prompt_generator"]}
    try:
        for name, path in zip(names, [folder.parent, folder, folder / "templates"], strict=True):
            package = types.ModuleType(name)
            package.__path__ = [str(path)]
            sys.modules[name] = package
        for name, path in [(f"{names[2]}.system_prompt_templates",
                            folder / "templates" / "system_prompt_templates.py"),
                           (f"{names[1]}.prompt_generator", folder / "prompt_generator.py")]:
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        yield sys.modules[f"{names[1]}.prompt_generator"]
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def templates_or_skip() -> TemplateSource:
    """The user's copy of the original templates; the test is skipped, saying how to get
    them, when there is none."""
    import pytest

    from amlab.errors import AmlabError
    from amlab.original.source import locate

    try:
        return locate()
    except AmlabError as exc:
        pytest.skip(f"needs the original study's templates: {exc}")
