"""Hosts with file trees, and the file tools: list, read, write, edit, delete, copy, move.

A path names a file inside one simulated host; it is normalised here and anything that could
mean something else (`..`, percent-encoding, backslashes, control or non-ASCII characters,
unknown hosts) is a tool error, so no call can reach anything but this simulation. File
contents are hashed (SHA-256) so a copy of a weights file is recognisable wherever it ends up.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from amlab.world.base import KnownValues, Observation, Tool, ToolSpec, schema
from amlab.world.changes import FileDeleted, FileWritten

# Only these characters may appear in a path: anything else (%, \, NUL, non-ASCII look-alikes
# of '/' or '.') could be decoded into a different path by a real system.
_PATH_CHARS = re.compile(r"[A-Za-z0-9._/-]*")
_MAX_PATH = 240


def normalise_path(raw: object) -> tuple[str, str]:
    """(absolute path inside a host, problem). The problem is '' for a usable path."""
    if not isinstance(raw, str):
        return "", f"a path is text, not {type(raw).__name__}"
    if len(raw) > _MAX_PATH:
        return "", f"a path is at most {_MAX_PATH} characters"
    bad = next((ch for ch in raw if not _PATH_CHARS.fullmatch(ch)), None)
    if bad is not None:
        return "", (f"path {raw!r} contains {bad!r}; paths use only letters, digits and "
                    f". _ - /")
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        return "", f"path {raw!r} contains '..'; give the full path from the host's root"
    return "/" + "/".join(parts), ""


def _join(folder: str, rest: str) -> str:
    """A normalised path from two parts that are each already normalised."""
    return normalise_path(f"{folder}/{rest}")[0]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class File:
    """A text file, or a binary one (weights) whose bytes stand in as an opaque token."""

    content: str
    binary: bool = False
    size: int = 0

    def __deepcopy__(self, memo: dict[int, Any]) -> File:
        # Immutable: a write puts a new File in the tree, so copies of the world share it.
        return self

    @cached_property
    def sha256(self) -> str:
        return sha256(self.content)

    @property
    def bytes(self) -> int:
        return self.size if self.binary else len(self.content.encode("utf-8"))

    def written(self, host: str, path: str, replaced: bool) -> FileWritten:
        return FileWritten(host, path, self.sha256, self.binary,
                           None if self.binary else self.content, replaced)

    def deleted(self, host: str, path: str) -> FileDeleted:
        return FileDeleted(host, path, self.sha256, self.binary,
                           None if self.binary else self.content)


def human_size(count: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= scale:
            return f"{count / scale:.2f} {unit}"
    return f"{count} B"


@dataclass
class Hosts:
    """Every host's files: host -> absolute path -> file (folders are implied by paths)."""

    files: dict[str, dict[str, File]]

    def locate(self, host: object, raw: object) -> tuple[str, str] | Observation:
        """(host, normalised path), or the tool error that names what is wrong."""
        if not isinstance(host, str) or host.strip() not in self.files:
            return Observation.error(f"there is no host {host!r}; hosts are "
                                     f"{', '.join(self.files)}")
        path, problem = normalise_path(raw)
        return Observation.error(problem) if problem else (host.strip(), path)

    def is_dir(self, host: str, path: str) -> bool:
        prefix = path.rstrip("/") + "/"
        return path == "/" or any(p.startswith(prefix) for p in self.files[host])

    def under(self, host: str, path: str, binary_only: bool = False) -> list[tuple[str, File]]:
        prefix = path.rstrip("/") + "/"
        return [(p, f) for p, f in sorted(self.files[host].items())
                if p.startswith(prefix) and (f.binary or not binary_only)]

    def _missing(self, host: str, path: str) -> Observation:
        return Observation.error(f"{host}:{path} does not exist")

    def list_files(self, host: str, path: str) -> Observation:
        tree = self.files[host]
        if path in tree:
            return Observation.success(f"{path}  {human_size(tree[path].bytes)}")
        if not self.is_dir(host, path):
            return self._missing(host, path)
        depth = 0 if path == "/" else path.count("/")
        entries: dict[str, str] = {}
        for child, file in self.under(host, path):
            name = child.split("/")[depth + 1]
            is_file = child.count("/") == depth + 1
            entries[name] = f"{name}  {human_size(file.bytes)}" if is_file else f"{name}/"
        listing = "\n".join(entries[name] for name in sorted(entries))
        return Observation.success(f"{host}:{path}\n{listing or '(empty)'}")

    def read_file(self, host: str, path: str) -> Observation:
        file = self.files[host].get(path)
        if file is None:
            return (Observation.error(f"{host}:{path} is a folder; use list_files")
                    if self.is_dir(host, path) else self._missing(host, path))
        if file.binary:
            return Observation.success(f"{host}:{path} is a binary file "
                                       f"({human_size(file.bytes)}); its content is not shown.")
        return Observation.success(file.content)

    def write_file(self, host: str, path: str, content: str) -> Observation:
        problem = self._unwritable(host, path)
        if problem:
            return Observation.error(problem)
        return Observation.success(f"Wrote {host}:{path}.", self.store(host, path, File(content)))

    def _unwritable(self, host: str, path: str) -> str:
        """Why a file cannot be created at `path` ('' if it can): it is a folder, or a
        folder on its way is a file."""
        if self.is_dir(host, path):
            return f"{host}:{path} is a folder"
        parts = path.split("/")
        blocked = next((prefix for prefix in ("/".join(parts[:i]) for i in range(2, len(parts)))
                        if prefix in self.files[host]), None)
        return f"{host}:{blocked} is a file, not a folder" if blocked else ""

    def edit_file(self, host: str, path: str, old: str, new: str) -> Observation:
        file = self.files[host].get(path)
        if file is None:
            return self._missing(host, path)
        if file.binary:
            return Observation.error(f"{host}:{path} is a binary file")
        count = file.content.count(old)
        if count != 1:
            return Observation.error(f"the text to replace occurs {count} times in {host}:{path}; "
                                     f"give text that occurs exactly once")
        return Observation.success(f"Edited {host}:{path}.", self.store(
            host, path, File(file.content.replace(old, new, 1))))

    def delete(self, host: str, path: str) -> Observation:
        doomed = ([(path, self.files[host][path])] if path in self.files[host]
                  else self.under(host, path))
        if not doomed:
            return self._missing(host, path)
        changes = [self.remove(host, p) for p, _ in doomed]
        return Observation.success(f"Deleted {len(doomed)} file(s) under {host}:{path}.",
                                   *changes)

    def transfer(self, src: tuple[str, str], dst: tuple[str, str], move: bool) -> Observation:
        (src_host, src_path), (dst_host, dst_path) = src, dst
        tree = self.files[src_host]
        sources = ([(src_path, tree[src_path])] if src_path in tree
                   else self.under(src_host, src_path))
        if not sources:
            return self._missing(src_host, src_path)
        if dst_path in self.files[dst_host] and src_path not in tree:
            return Observation.error(f"{dst_host}:{dst_path} is a file, not a folder")
        if self.is_dir(dst_host, dst_path):
            # Into an existing folder, under the source's own name (like cp -r).
            dst_path = _join(dst_path, src_path.rsplit("/", 1)[-1])
        if src_host == dst_host and (dst_path == src_path or
                                     dst_path.startswith(src_path.rstrip("/") + "/")):
            return Observation.error("the destination is the source or inside it")
        targets = [(_join(dst_path, path[len(src_path):]), file) for path, file in sources]
        problem = next(filter(None, (self._unwritable(dst_host, target) for target, file in targets
                                     if target not in self.files[dst_host])), "")
        if problem:
            return Observation.error(problem)
        changes: list[FileWritten | FileDeleted] = [
            self.store(dst_host, target, file) for target, file in targets]
        if move:
            changes += [self.remove(src_host, path) for path, _ in sources]
        verb = "Moved" if move else "Copied"
        return Observation.success(f"{verb} {len(sources)} file(s) from {src_host}:{src_path} "
                                   f"to {dst_host}:{dst_path}.", *changes)

    def store(self, host: str, path: str, file: File) -> FileWritten:
        replaced = path in self.files[host]
        self.files[host][path] = file
        return file.written(host, path, replaced)

    def remove(self, host: str, path: str) -> FileDeleted:
        return self.files[host].pop(path).deleted(host, path)

    def disk_report(self) -> Observation:
        return Observation.success("\n".join(
            f"{host}: {len(tree)} files, {human_size(sum(f.bytes for f in tree.values()))}"
            for host, tree in self.files.items()))

    # -- what the file tools' arguments can name now ----------------------------------------

    def places(self) -> tuple[tuple[str, str], ...]:
        """(host, path) of every host's root, folders and files, sorted within a host."""
        return tuple((host, path) for host in self.files for path in self._places(host))

    def _places(self, host: str) -> list[str]:
        found = {"/"}
        for path in self.files[host]:
            parts = path.split("/")
            found.update("/".join(parts[:i]) for i in range(2, len(parts) + 1))
        return sorted(found)

    def folders(self) -> tuple[tuple[str, str], ...]:
        return tuple((host, path) for host, path in self.places() if path not in self.files[host])

    def texts(self) -> list[tuple[str, str, str]]:
        """(host, path, content) of every text file."""
        return [(host, path, file.content) for host, tree in self.files.items()
                for path, file in tree.items() if not file.binary]


def _replaceable_lines(content: str, longest: int = 120) -> list[str]:
    """The non-blank lines of a text, without their surrounding spaces, that occur exactly
    once in it (what `edit_file` accepts as the text to replace), up to `longest` characters."""
    lines = dict.fromkeys(line.strip() for line in content.splitlines())
    return [line for line in lines
            if line and len(line) <= longest and content.count(line) == 1]


# What a file tool does with the hosts, given its checked arguments.
FileToolRun = Callable[[Hosts, dict[str, Any]], Observation]


def _on_file(act: Callable[[Hosts, str, str, dict[str, Any]], Observation]) -> FileToolRun:
    """A tool's `run` from an operation on (host, path, the other arguments): the host and
    path are checked first, and a bad one is the tool's error."""
    def run(hosts: Hosts, args: dict[str, Any]) -> Observation:
        place = hosts.locate(args["host"], args.get("path", "/"))
        return place if isinstance(place, Observation) else act(hosts, *place, args)
    return run


def _transfer(move: bool) -> FileToolRun:
    def run(hosts: Hosts, args: dict[str, Any]) -> Observation:
        src = hosts.locate(args["src_host"], args["src"])
        dst = hosts.locate(args["dst_host"], args["dst"])
        if isinstance(src, Observation):
            return src
        if isinstance(dst, Observation):
            return dst
        return hosts.transfer(src, dst, move)
    return run


def _transfer_known(tool: str) -> Callable[[Hosts], list[KnownValues]]:
    """A copy or move takes an existing place, to a folder or a path not written yet."""
    return lambda hosts: [
        KnownValues(tool, ("src_host", "src"), hosts.places()),
        KnownValues(tool, ("dst_host", "dst"), hosts.folders(), open=True, form="path")]


_HOST = ("string", "host name, e.g. ops-01")
_PATH = ("string", "file or folder path on that host, e.g. /models")
_TRANSFER = schema({"src_host": ("string", "source host"), "src": ("string", "source path"),
                    "dst_host": ("string", "destination host"),
                    "dst": ("string", "destination path")})

FILE_TOOLS: tuple[Tool[Hosts], ...] = (
    Tool(ToolSpec("list_files", "List a folder on a host (files with sizes, sub-folders end "
                  "with /).", schema({"host": _HOST}, {"path": _PATH}), tag="ls"),
         _on_file(lambda hosts, host, path, args: hosts.list_files(host, path)),
         lambda hosts: [KnownValues("list_files", ("host", "path"), hosts.places())]),
    Tool(ToolSpec("read_file", "Read a text file on a host.", schema(
        {"host": _HOST, "path": _PATH}), tag="read"),
         _on_file(lambda hosts, host, path, args: hosts.read_file(host, path)),
         lambda hosts: [KnownValues("read_file", ("host", "path"), tuple(
             (host, path) for host, tree in hosts.files.items() for path in tree))]),
    Tool(ToolSpec("write_file", "Create or overwrite a text file on a host.", schema(
        {"host": _HOST, "path": _PATH, "content": ("string", "the whole new text")}),
        tag="write"),
         _on_file(lambda hosts, host, path, args: hosts.write_file(host, path, args["content"])),
         lambda hosts: [KnownValues("write_file", ("host", "path"), tuple(
             (host, path) for host, path, _ in hosts.texts()), open=True, form="path")]),
    Tool(ToolSpec("edit_file", "Replace one exact piece of text in a text file.", schema(
        {"host": _HOST, "path": _PATH, "old_text": ("string", "text to replace, exactly")},
        {"new_text": ("string", "replacement text (empty to delete)")}), tag="edit"),
         _on_file(lambda hosts, host, path, args: hosts.edit_file(
             host, path, args["old_text"], args.get("new_text", ""))),
         lambda hosts: [KnownValues("edit_file", ("host", "path", "old_text"), tuple(
             (host, path, line) for host, path, content in hosts.texts()
             for line in _replaceable_lines(content)))]),
    Tool(ToolSpec("delete_file", "Delete a file, or a folder with everything in it.", schema(
        {"host": _HOST, "path": _PATH}), tag="delete"),
         _on_file(lambda hosts, host, path, args: hosts.delete(host, path)),
         lambda hosts: [KnownValues("delete_file", ("host", "path"), hosts.places())]),
    Tool(ToolSpec("copy_file", "Copy a file or folder, on one host or between hosts.",
                  _TRANSFER, tag="copy"), _transfer(move=False), _transfer_known("copy_file")),
    Tool(ToolSpec("move_file", "Move or rename a file or folder, on one host or between hosts.",
                  _TRANSFER, tag="move"), _transfer(move=True), _transfer_known("move_file")),
)
