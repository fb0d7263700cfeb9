"""The ``vesalius`` command as a user runs it: a real process, a real installation dir."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pydicom

from conftest import cli_token, free_port
from data_factory import make_instance, write

VESALIUS = [sys.executable, "-m", "vesalius.cli.main"]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VESALIUS, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_import_folder_zip_dicomdir_and_junk(tmp_path: Path) -> None:
    source = tmp_path / "in"
    (source / "nested").mkdir(parents=True)
    write(make_instance(), source / "nested")
    write(make_instance(), source)
    (source / "notes.txt").write_text("not an image")
    zipped = tmp_path / "studies.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("a/one.dcm", (source / "nested").iterdir().__next__().read_bytes())
        archive.writestr("b/two.dcm", write(make_instance(), tmp_path).read_bytes())
    dicomdir_tree = Path(pydicom.__file__).parent / "data" / "test_files" / "dicomdirtests"
    dicomdir = tmp_path / "dicomdir"
    shutil.copytree(dicomdir_tree, dicomdir)
    data_dir = tmp_path / "data"

    result = _run("import", "--data-dir", str(data_dir), "--quiet", str(source), str(zipped),
                  str(dicomdir / "DICOMDIR"))
    assert "stored 34, duplicate 1, replaced 0, rejected 0, not DICOM 1" in result.stdout, (
        result.stdout + result.stderr)
    assert "notes.txt: not a DICOM Part 10 file" in result.stderr
    assert result.returncode == 0

    again = _run("import", "--data-dir", str(data_dir), "--quiet", str(source))
    assert "stored 0, duplicate 2" in again.stdout
    missing = _run("import", "--data-dir", str(data_dir), "--quiet", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "no such file or directory" in missing.stderr


def test_serve_with_demo_answers_healthz_and_dicomweb(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "vesalius.toml"
    config.write_text("[vesalius]\ndemo_ct_slices = 6\n")
    process = subprocess.Popen(
        [*VESALIUS, "serve", "--data-dir", str(tmp_path / "data"), "--config", str(config),
         "--host", "127.0.0.1", "--http-port", str(port), "--dicom-port", str(free_port()),
         "--demo"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                if health.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.3)
        assert health.json()["status"] == "ok"
        # The token names the server's address as its issuer: issue it for the same one.
        headers = cli_token(tmp_path / "data", config=config,
                            env={"VESALIUS_HOST": "127.0.0.1", "VESALIUS_HTTP_PORT": str(port)})
        studies = httpx.get(f"http://127.0.0.1:{port}/dicom-web/studies",
                            headers=headers).json()
        modalities = sorted(s["00080061"]["Value"][0] for s in studies)
        assert modalities == ["CT", "CT", "DX", "US"]
        ct = [s for s in studies if s["00080061"]["Value"] == ["CT"]]
        assert all(s["00201208"]["Value"] == [6] for s in ct)
        assert {s["00100020"]["Value"][0] for s in studies} == {"VES-DEMO-0001"}
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert f"listening on http://127.0.0.1:{port}" in output


def test_bad_config_is_reported_not_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("nonsense = 1\n")
    result = _run("import", "--config", str(config), str(tmp_path))
    assert result.returncode == 2
    assert "unknown setting 'nonsense'" in result.stderr
    assert "Traceback" not in result.stderr
