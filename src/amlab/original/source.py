"""Where the original study's templates are: found at run time in a copy the user has.

The Agentic Misalignment templates are MIT-licensed and published inside the PyPI package
`inspect-evals` (folder `inspect_evals/agentic_misalignment`). amlab never ships them; it
reads them from, in this order:

1. the path in the environment variable `AMLAB_ORIGINAL_TEMPLATES` (or given explicitly):
   a downloaded wheel (`.whl`), or a folder — the package's `agentic_misalignment` folder,
   its `templates` folder, or any folder holding `inspect_evals/agentic_misalignment`
   (an unpacked wheel, a site-packages directory);
2. the installed `inspect_evals` package, found with `importlib.util.find_spec` without
   importing it (its own dependencies need not be installed).
"""

from __future__ import annotations

import importlib.util
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from amlab.errors import AmlabError

ENV_VAR = "AMLAB_ORIGINAL_TEMPLATES"
PACKAGE = "inspect_evals"
# The study's folder inside the package, and the files amlab reads from it.
STUDY_DIR = PurePosixPath(PACKAGE, "agentic_misalignment")
GENERATOR = "prompt_generator.py"
SYSTEM_PROMPTS = "templates/system_prompt_templates.py"

HOW_TO_GET = (
    "install the package without its dependencies (pip install --no-deps inspect-evals), "
    f"or download its wheel (pip download --no-deps -d DIR inspect-evals) and set {ENV_VAR} "
    "to the .whl file or to an unpacked copy of it"
)


@dataclass
class TemplateSource:
    """A readable copy of the study's folder: a directory, or a folder inside a wheel."""

    location: str
    kind: str  # "folder", "wheel" or "installed package"
    _root: Path | None = None
    _wheel: Path | None = None
    _cache: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def version(self) -> str:
        """The inspect-evals version of this copy, where it says ('' if unknown)."""
        if self._wheel is not None:
            parts = self._wheel.name.split("-")
            return parts[1] if len(parts) > 2 else ""
        if self.kind == "installed package":
            from importlib import metadata

            try:
                return metadata.version("inspect-evals")
            except metadata.PackageNotFoundError:
                return ""
        return ""

    def read(self, relative: str) -> str:
        """The text of a file of the study's folder, e.g. `templates/blackmail/...`."""
        if relative not in self._cache:
            if self._wheel is not None:
                raise AmlabError(f"{self._wheel}: has no file {STUDY_DIR / relative}; is it "
                                 f"a wheel of inspect-evals?")
            assert self._root is not None
            path = self._root / relative
            if not path.is_file():
                raise AmlabError(f"{path}: no such file in the original templates at "
                                 f"{self._root}; {HOW_TO_GET}.")
            self._cache[relative] = path.read_text(encoding="utf-8")
        return self._cache[relative]

    def names(self, folder: str) -> list[str]:
        """The file names directly inside a folder of the study's folder, sorted."""
        if self._wheel is not None:
            prefix = f"{folder}/"
            return sorted(name[len(prefix):] for name in self._cache
                          if name.startswith(prefix) and "/" not in name[len(prefix):])
        assert self._root is not None
        directory = self._root / folder
        return sorted(p.name for p in directory.iterdir() if p.is_file()) \
            if directory.is_dir() else []


def locate(path: str | Path | None = None) -> TemplateSource:
    """The templates at `path`, else at $AMLAB_ORIGINAL_TEMPLATES, else in the installed
    package; an AmlabError saying how to get them when there are none."""
    given = path if path is not None else os.environ.get(ENV_VAR) or None
    if given is not None:
        return _from_path(Path(given), "the given path" if path is not None else ENV_VAR)
    installed = installed_study_dir()
    if installed is not None:
        return TemplateSource(str(installed), "installed package", _root=installed)
    raise AmlabError(f"the original study's templates were not found: {ENV_VAR} is not set "
                     f"and the package {PACKAGE} is not installed; {HOW_TO_GET}.")


def installed_study_dir() -> Path | None:
    """The installed package's study folder, found without importing the package."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / STUDY_DIR.name
        if (candidate / GENERATOR).is_file():
            return candidate
    return None


def _from_path(path: Path, origin: str) -> TemplateSource:
    if path.is_file() and path.suffix == ".whl":
        # The study's folder is small: read it once (a wheel holds tens of thousands of files).
        prefix = f"{STUDY_DIR}/"
        with zipfile.ZipFile(path) as wheel:
            texts = {name[len(prefix):]: wheel.read(name).decode("utf-8")
                     for name in wheel.namelist()
                     if name.startswith(prefix) and name.endswith((".py", ".md"))}
        if GENERATOR not in texts:
            raise AmlabError(f"{path} ({origin}): this wheel has no {STUDY_DIR / GENERATOR}; "
                             f"use a wheel of inspect-evals.")
        return TemplateSource(str(path), "wheel", _wheel=path, _cache=texts)
    if path.is_dir():
        for candidate in (path, path.parent, path / STUDY_DIR):
            if (candidate / GENERATOR).is_file() and (candidate / SYSTEM_PROMPTS).is_file():
                return TemplateSource(str(candidate), "folder", _root=candidate)
        raise AmlabError(f"{path} ({origin}): holds neither {GENERATOR} and "
                         f"{SYSTEM_PROMPTS} nor {STUDY_DIR}; give the inspect-evals wheel, its "
                         f"agentic_misalignment folder or a folder containing {PACKAGE}.")
    raise AmlabError(f"{path} ({origin}): no such wheel or folder; {HOW_TO_GET}.")
