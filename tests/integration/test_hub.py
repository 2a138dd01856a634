"""The foundation end to end: a real hub, proxy, single-user servers and kernels."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import requests

import echoes_lab

from harness import REPO, Hub, gone, lean, login, new_root, processes, wait_for

pytestmark = pytest.mark.integration


def test_spawn_server_and_run_echoes_kernel(hub):
    hub.create_user("alice")
    model = hub.start_server("alice")
    assert model["servers"][""]["ready"]

    # the server answers through the proxy, with the ECHOES kernel as the default
    specs = hub.server_get("alice", "/api/kernelspecs")
    assert specs.status_code == 200
    assert specs.json()["default"] == "echoes"
    assert specs.json()["kernelspecs"]["echoes"]["spec"]["display_name"] == "ECHOES Lab (Python 3)"

    out = hub.execute("alice", "import echoes_lab, os; print(echoes_lab.__version__); "
                               "print(os.environ['ECHOES_DATA']); print(os.getcwd())")
    assert out["errors"] == [] and out["status"] == "ok"
    version, data, cwd = out["stdout"].split()
    assert version == echoes_lab.__version__
    assert data == str(hub.state / "shared")
    assert cwd == str(hub.state / "homes" / "alice")


def test_shared_datasets_are_read_only_and_homes_private(hub):
    hub.create_user("bruno")
    hub.start_server("bruno")
    out = hub.execute("bruno", (
        "import os, pathlib\n"
        "try:\n"
        "    (pathlib.Path(os.environ['ECHOES_DATA']) / 'mine.txt').write_text('x')\n"
        "    print('WROTE')\n"
        "except PermissionError:\n"
        "    print('READ-ONLY')\n"
        "pathlib.Path('notes.txt').write_text('kept')\n"
        "print(oct(os.stat('.').st_mode & 0o777))\n"
        "try:\n"
        "    (pathlib.Path(os.environ['ECHOES_DATA']).parent / 'jupyterhub.sqlite').read_bytes()\n"
        "    print('DB-READABLE')\n"
        "except PermissionError:\n"
        "    print('DB-PRIVATE')\n"
    ))
    assert out["errors"] == [], out
    lines = out["stdout"].split()
    # the hub's database is private to the hub wherever users have accounts of their own
    assert lines == ["READ-ONLY", "0o700", "DB-PRIVATE" if os.geteuid() == 0 else "DB-READABLE"]
    assert (hub.state / "homes" / "bruno" / "notes.txt").read_text() == "kept"
    if os.geteuid() == 0:
        # under root every user runs as a system account of their own
        owner = (hub.state / "homes" / "bruno").owner()
        assert owner == "jupyter-bruno"


def test_login_form_cookie_session_opens_the_lab(hub):
    secrets = hub.secrets
    # a wrong password is refused on the form
    s = requests.Session()
    s.get(f"{hub.url}/hub/login")
    bad = s.post(f"{hub.url}/hub/login", data={"username": "carla", "password": "wrong-password",
                                               "_xsrf": s.cookies.get("_xsrf")})
    assert bad.status_code == 403

    session = login(hub, "carla", secrets["user_password"])
    home = session.get(f"{hub.url}/hub/api/user")
    assert home.status_code == 200 and home.json()["name"] == "carla"
    hub.start_server("carla")
    lab = session.get(f"{hub.url}/user/carla/lab")
    assert lab.status_code == 200
    assert lab.url.endswith("/user/carla/lab")
    assert "JupyterLab" in lab.text

    admin = login(hub, "admin", secrets["admin_password"])
    me = admin.get(f"{hub.url}/hub/api/user").json()
    assert me["admin"] is True


def test_hub_restart_keeps_users_and_running_servers(hub_factory):
    hub = hub_factory()
    hub.create_user("dora")
    hub.start_server("dora")
    pid = next(p.pid for p in hub.alive() if "echoes_lab.hub.singleuser" in p.cmdline())
    hub.stop_hub()
    assert not gone(pid), "stopping the hub must leave running servers alone"

    hub.start()
    users = {u["name"]: u for u in hub.api("GET", "/users").json()}
    assert users["dora"]["servers"][""]["ready"]
    status = hub.server_get("dora", "/api/status")
    assert status.status_code == 200
    assert hub.execute("dora", "print(6 * 7)")["stdout"].strip() == "42"


def test_make_hub_prints_working_credentials():
    """``make hub`` on a terminal (a real pseudo-terminal here, free ports) prints how to log in,
    and it works; the passwords go to the terminal only. The set-up installs the demo datasets,
    which a user's kernel opens with one call."""
    import pty
    import threading

    hub = Hub(new_root(), data={"install_demo": True})
    env = {**os.environ, "MAKEFLAGS": ""}
    master, terminal = pty.openpty()
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "hub", f"SETTINGS={hub.settings_file}"],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    screen = bytearray()

    def read_terminal():
        with open(hub.log_path, "ab") as log:  # kept for the harness's diagnostics
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the terminal closed with the last process on it
                    return
                if not data:
                    return
                screen.extend(data)
                log.write(data)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    hub.proc, hub.signal_group = proc, True
    try:
        # the credentials are printed before the hub's own log starts
        text = wait_for(
            lambda: "shown this once" in screen.decode(errors="replace")
            and screen.decode(errors="replace")
            or (proc.poll() is not None and pytest.fail(screen.decode(errors="replace"))),
            120, "the first-run login instructions",
        )
        admin_pw = re.search(r"admin \(admin\): password (\S+)", text).group(1)
        user_pw = re.search(r"any user name, password (\S+)", text).group(1)
        hub.wait_healthy(60)
        assert login(hub, "admin", admin_pw).get(f"{hub.url}/hub/api/user").json()["admin"]
        login(hub, "erik", user_pw)
        hub.start_server("erik")
        out = hub.execute(
            "erik", "import echoes_lab; print(len(echoes_lab.open_dataset('demo-collection')))"
        )
        assert out["errors"] == [] and int(out["stdout"]) > 3000
        # nothing the hub writes to files holds the passwords
        for path in hub.state.rglob("*.log"):
            assert admin_pw not in path.read_text(errors="replace"), path
    finally:
        left = hub.shutdown()
        os.close(master)
    assert not left, left


#: the idle culler's role (echoes_lab.hub.config.CULLER): what its token may do, nothing more
CULLER_SCOPES = {"list:users", "read:users:activity", "read:servers", "delete:servers"}


def culler_processes(hub) -> list:
    """Processes of this hub running jupyterhub-idle-culler as a command of its own."""
    api = f"127.0.0.1:{hub.settings['hub']['hub_port']}/"
    return processes(lambda p: "jupyterhub_idle_culler" in " ".join(p.cmdline())
                     and api in p.environ().get("JUPYTERHUB_API_URL", ""))


def test_idle_servers_are_culled_by_the_managed_culler(hub_factory):
    """With no services' host (the culler the only service), the culler is the managed
    service it always was: a process of its own."""
    hub = hub_factory(**lean("culler"), projects={"enabled": False},
                      metrics={"enabled": False}, culler={"enabled": True, "timeout": 8,
                                                          "every": 2})
    services = hub.api("GET", "/services").json()
    assert "idle-culler" in services and services["idle-culler"]["pid"]
    assert [p.pid for p in culler_processes(hub)] == [services["idle-culler"]["pid"]]
    hub.create_user("fay")
    hub.start_server("fay")
    wait_for(lambda: not hub.api("GET", "/users/fay").json()["servers"], 60,
             "the idle culler to stop fay's server")
    # culling stops the server; the user and her files stay
    assert hub.api("GET", "/users/fay").status_code == 200
    assert (hub.state / "homes" / "fay").is_dir()


def test_idle_servers_are_culled_by_the_culler_in_the_services_process(hub_factory):
    """Issue 36: where our services share a host process, the culler is one more member of it
    (no process of its own), still the hub's ``idle-culler`` with its own token and its role's
    scopes only, logging as the culler; it stops with the host."""
    hub = hub_factory(**lean("culler", "workshops"), metrics={"enabled": False},
                      culler={"enabled": True, "timeout": 8, "every": 2})
    services = hub.api("GET", "/services").json()
    assert not services["idle-culler"]["pid"]  # not a process the hub manages
    [host] = hub.service_processes()["workshops"]
    assert hub.service_processes()["idle-culler"] == [host]
    assert "echoes_lab.hub.services.host" in host.cmdline()
    assert culler_processes(hub) == []
    # the host holds no culler token in its environment (it reads the secrets file), and the
    # culler's token is the idle-culler service's, with its role's scopes and no other
    token = hub.secrets["api_tokens"]["idle-culler"]
    assert token not in json.dumps(host.environ())
    me = hub.api("GET", "/user", token=token).json()
    assert (me["kind"], me["name"]) == ("service", "idle-culler")
    # (JupyterHub adds the user names its scopes imply)
    assert set(me["scopes"]) == CULLER_SCOPES | {"read:users:name"}, me["scopes"]

    hub.create_user("cul-gus")
    hub.start_server("cul-gus")
    wait_for(lambda: not hub.api("GET", "/users/cul-gus").json()["servers"], 60,
             "the culler in the services' process to stop cul-gus's server")
    log = hub.log_tail(4000)
    # the culler's own log line, and the hub saw the request as the idle-culler service's
    assert re.search(r"IdleCuller .*Culling server cul-gus \(inactive for", log), log[-3000:]
    assert re.search(r"DELETE /hub/api/users/cul-gus/server \(idle-culler@", log), log[-3000:]
    assert hub.api("GET", "/users/cul-gus").status_code == 200
    assert culler_processes(hub) == []
    assert hub.service_processes()["idle-culler"] == [host]  # the host did not restart

    # SIGTERM to the host: the culler stops with its other members, then the hub restarts it
    host.terminate()
    wait_for(lambda: gone(host), 20, "the services' process to stop on SIGTERM")
    log = hub.log_tail(4000)
    assert "idle-culler stopped" in log and "workshops service stopped" in log, log[-3000:]
