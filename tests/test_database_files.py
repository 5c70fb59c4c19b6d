"""The files a user passes as --db or --out: a foreign or damaged database is refused in one
sentence and left as it was, a database on a read-only file system is readable, paths that
cannot be written are one sentence, and a run that stops before its first trial leaves no
empty database behind."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from amlab.cli import main
from conftest import SRC
from test_run import experiment_file, run


def amlab_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run `amlab ARGS` in this process; return its stderr, asserting exit code 2."""
    with pytest.raises(SystemExit) as exit_info, pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["amlab", *args])
        main()
    assert exit_info.value.code == 2
    error = " ".join(capsys.readouterr().err.split())
    assert "Traceback" not in error and error.startswith("error:")
    return error


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()
            if p.is_file()}


def test_a_foreign_sqlite_file_is_refused_and_left_byte_for_byte_unchanged(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir()
    foreign = folder / "inventory.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE parts (sku TEXT, count INTEGER)")
        conn.execute("INSERT INTO parts VALUES ('bolt', 12)")
    conn.close()
    before = digests(folder)
    path = experiment_file(tmp_path, "complier.yaml")
    for args in (["run", str(path), "--db", str(foreign)],
                 ["run", str(path), "--db", str(foreign), "--resume"],
                 ["results", str(foreign)], ["rejudge", str(foreign)]):
        error = amlab_error(capsys, *args)
        assert f"{foreign}: is not an amlab results database" in error
    # No table added, no journal switched to WAL, no -wal or -shm file left beside it.
    assert digests(folder) == before
    with sqlite3.connect(foreign) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def damaged_copy(db: Path, folder: Path) -> Path:
    """`db` with its later pages overwritten: a header SQLite accepts, a broken b-tree."""
    folder.mkdir()
    copy = folder / db.name
    data = bytearray(db.read_bytes())
    page = 4096
    data[page:len(data) - page] = b"\xa5" * (len(data) - 2 * page)
    copy.write_bytes(bytes(data))
    return copy


def test_a_damaged_database_is_one_sentence_in_every_command_and_is_not_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = experiment_file(tmp_path, "complier.yaml", samples=20)
    run(path, tmp_path / "r.db").close()
    damaged = damaged_copy(tmp_path / "r.db", tmp_path / "damaged")
    before = digests(damaged.parent)
    for args in (["run", str(path), "--db", str(damaged), "--resume"],
                 ["results", str(damaged)],
                 ["report", str(damaged), "--out", str(tmp_path / "report")],
                 ["export", str(damaged), "--out", str(tmp_path / "out.csv")],
                 ["rejudge", str(damaged)],
                 ["view", str(damaged)]):
        error = amlab_error(capsys, *args)
        assert f"{damaged}: is damaged or not an SQLite database" in error, args
    # Not a byte written (a reader of a WAL database leaves SQLite's empty side files).
    assert digests(damaged.parent)[damaged.name] == before[damaged.name]
    wal = damaged.with_name(damaged.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_paths_that_cannot_be_written_are_one_sentence(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = experiment_file(tmp_path, "complier.yaml")
    db = tmp_path / "r.db"
    run(path, db).close()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    under_a_file = amlab_error(capsys, "run", str(path), "--db", str(a_file / "runs" / "r.db"))
    assert f"because {a_file} is a file, not a folder" in under_a_file
    assert "is a folder; give a file name" in amlab_error(
        capsys, "run", str(path), "--db", str(tmp_path))
    assert f"{a_file}: is a file; give the name of a folder" in amlab_error(
        capsys, "report", str(db), "--out", str(a_file))
    assert f"{tmp_path}: is a folder; give a file name" in amlab_error(
        capsys, "export", str(db), "--out", str(tmp_path))
    assert a_file.read_text() == "not a folder"


@pytest.mark.parametrize("model", [
    {"name": "scripted/complier", "options": {"temperature": 0.2}},
    {"name": "openai/gpt-4.1"},
], ids=["bad option", "missing key"])
def test_a_run_stopped_before_its_first_trial_leaves_no_database_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        model: dict[str, object]) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    path = experiment_file(tmp_path, "complier.yaml")
    spec = yaml.safe_load(path.read_text())
    spec["models"] = [model]
    path.write_text(yaml.safe_dump(spec))
    db = tmp_path / "runs" / "r.db"
    error = amlab_error(capsys, "run", str(path), "--db", str(db))
    assert "options" in error or "OPENAI_API_KEY" in error
    assert not db.exists()
    assert sorted(p.name for p in db.parent.iterdir()) == []


READ_ONLY_SCRIPT = """
set -e
mount -t tmpfs none "$MOUNT"
cp "$DB" "$MOUNT/r.db"
mount -o remount,ro "$MOUNT"
"$PYTHON" -m amlab results "$MOUNT/r.db"
"$PYTHON" -m amlab run "$EXPERIMENT" --db "$MOUNT/new/r.db" || echo "run exit $?"
"""


def test_a_database_on_a_read_only_file_system_is_readable(tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-m", "true"]).returncode != 0:
        pytest.skip("mounting a read-only file system needs unshare -m")
    path = experiment_file(tmp_path, "complier.yaml")
    db = tmp_path / "r.db"
    run(path, db).close()
    mount = tmp_path / "ro"
    mount.mkdir()
    result = subprocess.run(
        [unshare, "-m", "sh", "-c", READ_ONLY_SCRIPT], capture_output=True, text=True,
        timeout=120, env={"MOUNT": str(mount), "DB": str(db), "PYTHON": sys.executable,
                          "EXPERIMENT": str(path), "PYTHONPATH": str(SRC), "COLUMNS": "320",
                          "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "t: rate of each behaviour" in out
    error = " ".join(result.stderr.split())
    assert "run exit 2" in out and "Traceback" not in error
    assert f"{mount}/new/r.db: cannot be written" in error
