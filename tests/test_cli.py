"""The ``echoes-lab`` command line: one clear line and a non-zero exit for every bad input."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import echoes_lab

EXE = str(Path(sys.executable).with_name("echoes-lab"))


def run(*args, env=None):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def settings(tmp_path, **hub):
    lines = ['profile = "local"', "[hub]", f'state_dir = "{tmp_path / "state"}"']
    lines += [f"{k} = {v}" for k, v in hub.items()]
    # nothing is spawned here; pytest's tmp_path is private to root, which isolation refuses
    lines += ["[spawner]", 'isolation = "none"']
    path = tmp_path / "s.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def one_line_error(proc, code):
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_version():
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"echoes-lab {echoes_lab.__version__}"


def test_bad_settings_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('profile = "local"\n[hub]\nport = "eighty"\n')
    line = one_line_error(run("hub", "--settings", str(bad)), 2)
    assert str(bad) in line and "'hub.port'" in line


def test_missing_node(tmp_path):
    # a PATH with no node on it: the proxy cannot run
    line = one_line_error(run("hub", "--settings", str(settings(tmp_path)),
                              env={"PATH": str(tmp_path)}), 3)
    assert "Node.js" in line and "apt-get install nodejs" in line


def test_port_already_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = settings(tmp_path, port=port, proxy_api_port=port + 1 if port < 65535 else 1025)
        line = one_line_error(run("hub", "--settings", str(path)), 3)
    assert f"port {port}" in line and "hub.port" in line and str(path) in line
