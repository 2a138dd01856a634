"""Users' servers as Slurm jobs: batchspawner's ``SlurmSpawner`` with the project's homes,
accounts and limits, and a safe port report.

* **Who submits.** As root, every job is submitted by the user's own system account
  (``jupyter-<name>``, :mod:`echoes_lab.hub.accounts`) through ``runuser``, so Slurm runs the
  server under that uid on the node, with the user's fair share and limits.
* **What a user may ask for.** The spawn form (and the REST API's ``user_options``) takes a
  partition, cores, memory (GiB) and hours, each checked against the profile's ``[slurm]``
  limits; anything else is refused with the key's name. batchspawner would copy every
  ``user_options`` key into the job script's variables, letting a user raise their own limits
  or rewrite the script; here only the checked ``req_*`` values reach the script.
* **Where the server runs.** Slurm reports a node's name; the proxy needs its address, read
  from ``scontrol show node`` (``NodeAddr``), so nodes need not be in the hub's DNS.
* **A lost node.** Jobs are submitted ``--no-requeue``: a server whose node fails must end
  (the hub then shows it as stopped and a new start lands on a working node), not come back
  later elsewhere on a port the hub never learnt.
* **The port report.** The job picks its port on the node and tells the hub
  (``/hub/api/batchspawner``). batchspawner's handler sets *any* attribute the request names on
  the spawner (its command, its submit prefix: code run by the hub as root); it is replaced by
  :class:`PortReportHandler`, which accepts ``{"port": <1-65535>}`` and nothing else, from
  the starting server's own token.
"""

from __future__ import annotations

import asyncio
import grp
import hmac
import html
import json
import os
import re
import shlex
import shutil
import sys

import batchspawner.api  # noqa: F401 (registers the handler replaced below)
from batchspawner import JobStatus, SlurmSpawner
from jupyterhub import apihandlers
from jupyterhub.apihandlers import APIHandler
from jupyterhub.user import User
from tornado import web
from traitlets import Float, Integer, List, Unicode, default

from echoes_lab.hub.spawner import EchoesSpawner, UserHomes

#: the URL pattern of batchspawner's port report, relative to the hub's prefix
PORT_REPORT = r"/api/batchspawner"
#: util-linux's runuser, by its path: the submit command's environment is the user's (no sbin)
RUNUSER = shutil.which("runuser", path=f"{os.defpath}:/usr/sbin:/sbin") or "/usr/sbin/runuser"
#: shadow's gpasswd, by its path (root's PATH may lack sbin): project groups' members
GPASSWD = shutil.which("gpasswd", path=f"{os.defpath}:/usr/sbin:/sbin") or "/usr/bin/gpasswd"
#: run as the user: ``~/projects/NAME`` links (argv: home, projects root, names)
_SYNC_LINKS = ("import sys; from echoes_lab.hub.services.projects.lab import sync_links; "
               "sync_links(sys.argv[1], sys.argv[2], sys.argv[3:])")
#: the options a user may set (form or REST API ``user_options``)
OPTIONS = ("partition", "cores", "memory", "hours")


class PortReportHandler(APIHandler):
    """``POST /hub/api/batchspawner`` ``{"port": N}``: a starting server's port, nothing else."""

    @web.authenticated
    def post(self):
        user = self.current_user
        token = self.get_auth_token()
        spawner = None
        if isinstance(user, User):
            spawner = next((s for s in user.spawners.values() if s.api_token and token
                            and hmac.compare_digest(s.api_token, token)), None)
        if spawner is None:
            raise web.HTTPError(403, "only a server's own token may report its port")
        try:
            data = json.loads(self.request.body or b"null")
        except ValueError:
            raise web.HTTPError(400, "the body must be JSON: {\"port\": N}") from None
        if not isinstance(data, dict) or set(data) != {"port"}:
            keys = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise web.HTTPError(400, f"the body must be {{\"port\": N}} and nothing else, "
                                     f"not {str(keys)[:80]}")
        port = data["port"]
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise web.HTTPError(400, "port must be a whole number in 1-65535, not "
                                     f"{repr(port)[:40]}")
        if spawner.pending != "spawn" or getattr(spawner, "port", 0):
            # a running server moving itself elsewhere would take its proxy route along
            raise web.HTTPError(409, "the port is reported once, while the server starts")
        spawner.port = port
        self.set_status(201)
        self.finish(json.dumps({"port": port}))


def _replace_port_report() -> None:
    handlers = apihandlers.default_handlers
    handlers[:] = [h for h in handlers if h[0] != PORT_REPORT]
    handlers.append((PORT_REPORT, PortReportHandler))


# at import, which the hub's configuration does (echoes_lab.hub.slurm.configure_slurm) before
# JupyterHub builds its routes
_replace_port_report()


class EchoesSlurmSpawner(UserHomes, SlurmSpawner):
    """batchspawner's SlurmSpawner with the ``local`` profile's homes and accounts."""

    slurm_conf = Unicode("", config=True, help="SLURM_CONF for Slurm's commands; \"\": theirs.")
    partitions = List(Unicode(), ["batch"], config=True, help="Partitions; the first is default.")
    cores = Integer(1, config=True)
    max_cores = Integer(4, config=True)
    memory = Float(2.0, config=True, help="GiB")
    max_memory = Float(8.0, config=True, help="GiB")
    hours = Integer(8, config=True)
    max_hours = Integer(24, config=True)

    @default("exec_prefix")
    def _exec_prefix_default(self):
        # as root: Slurm's commands run as the user's account (runuser: util-linux, no sudoers);
        # -m: the environment given (HOME here, not a stale one from an account's passwd entry)
        return f"{RUNUSER} -m -u {{username}} --" if self.isolated else ""

    @default("req_username")
    def _req_username_default(self):
        return self.system_user or self.user.name

    @default("req_homedir")
    def _req_homedir_default(self):
        return self.home_dir

    @default("req_srun")
    def _req_srun_default(self):
        return ""  # the batch step runs the server: one step, no srun in the job's environment

    @default("req_options")
    def _req_options_default(self):
        return "--no-requeue"

    # -- the spawn form and user_options ---------------------------------------------------
    @default("options_form")
    def _options_form_default(self):
        def number(name, label, value, top, step):
            return (f'<label for="{name}">{label} (at most {top:g})</label>'
                    f'<input class="form-control" type="number" id="{name}" name="{name}" '
                    f'min="{step}" max="{top:g}" step="{step}" value="{value:g}">')

        cores, max_cores, memory, max_memory = self.limits()
        choices = "".join(f'<option value="{html.escape(p)}">{html.escape(p)}</option>'
                          for p in self.partitions)
        return ('<div class="form-group"><label for="partition">Partition</label>'
                f'<select class="form-control" id="partition" name="partition">{choices}'
                "</select>"
                + number("cores", "Cores", cores, max_cores, 1)
                + number("memory", "Memory, GiB", memory, max_memory, 0.5)
                + number("hours", "Hours", self.hours, self.max_hours, 1) + "</div>")

    def options_from_form(self, formdata):
        raw = {key: values[0] for key, values in formdata.items() if values}
        options = {}
        for key, kind in (("partition", str), ("cores", int), ("memory", float),
                          ("hours", int)):
            if key in raw:
                try:
                    options[key] = kind(raw[key])
                except ValueError:
                    msg = f"{key} must be a number, not {raw[key]!r}"
                    raise ValueError(msg) from None
        return options

    def limits(self) -> tuple[int, int, float, float]:
        """Default and most cores, default and most memory (GiB) of this user's job.

        The spawner's ``mem_limit`` (``[spawner] mem_limit``, or a workshop seat's, set by the
        workshops' ``pre_spawn_hook``) and ``cpu_limit`` are what the local profile gives a
        server: here they are the job's ``--mem`` and ``--cpus-per-task`` by default and the
        most it may ask for, within the profile's ``max_memory`` and ``max_cores``. A limit
        above those is refused, naming it: the job would silently get less than it says.
        """
        cores, max_cores, memory, max_memory = (self.cores, self.max_cores, self.memory,
                                                self.max_memory)
        if self.mem_limit:
            gib = self.mem_limit / 2**30
            if gib > self.max_memory:
                msg = (f"the server's mem_limit ({gib:g} GiB, from [spawner] mem_limit or the "
                       f"workshop's) is above [slurm] max_memory = {self.max_memory:g}")
                raise ValueError(msg)
            memory = max_memory = gib
        if self.cpu_limit:
            # whole CPUs: Slurm allocates cores, not fractions of one
            whole = max(1, int(self.cpu_limit))
            if whole > self.max_cores:
                msg = (f"the server's cpu_limit ({self.cpu_limit:g}) is above [slurm] "
                       f"max_cores = {self.max_cores}")
                raise ValueError(msg)
            cores = max_cores = whole
        return cores, max_cores, memory, max_memory

    def resources(self) -> dict:
        """The job's partition, cores, memory (GiB) and hours: ``user_options`` checked against
        the profile's limits, defaults for what they leave out."""
        options = dict(self.user_options or {})
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            msg = f"unknown server option {unknown[0]!r}: the options are {', '.join(OPTIONS)}"
            raise ValueError(msg)
        cores, max_cores, memory, max_memory = self.limits()
        wanted = {"partition": self.partitions[0], "cores": cores, "memory": memory,
                  "hours": self.hours, **options}
        if wanted["partition"] not in self.partitions:
            msg = (f"partition {wanted['partition']!r} is not offered here: choose one of "
                   f"{', '.join(self.partitions)}")
            raise ValueError(msg)
        for key, top, kinds in (("cores", max_cores, (int,)),
                                ("memory", max_memory, (int, float)),
                                ("hours", self.max_hours, (int,))):
            value = wanted[key]
            if (not isinstance(value, kinds) or isinstance(value, bool)
                    or not 0 < value <= top):
                msg = f"{key} must be a number above 0 and at most {top:g}, not {value!r}"
                raise ValueError(msg)
        return wanted

    # -- the job ----------------------------------------------------------------------------
    def cmd_formatted_for_batch(self):
        # every argument quoted for the script's shell (the server's arguments hold quotes,
        # braces and spaces); the port-reporting wrapper instead of batchspawner-singleuser
        python = self.cmd[0] if self.cmd else sys.executable
        return shlex.join([python, "-m", "echoes_lab.hub.slurm.server", *self.get_args()])

    async def _get_batch_script(self, **subvars):
        # batchspawner has just copied user_options over these: put the checked ones back
        subvars.update(self.get_req_subvars())
        subvars["cmd"] = self.cmd_formatted_for_batch()
        return await super()._get_batch_script(**subvars)

    def user_env(self, env):
        env = EchoesSpawner.user_env(self, env)
        if self.slurm_conf:
            env["SLURM_CONF"] = self.slurm_conf
        return env

    async def start(self):
        wanted = self.resources()
        self.req_partition = wanted["partition"]
        self.req_nprocs = str(wanted["cores"])
        self.req_memory = f"{round(wanted['memory'] * 1024)}M"
        self.req_runtime = f"{wanted['hours']}:00:00"
        uid, gid = await self._ensure_account()
        await self.sync_projects(uid, gid)
        self.notebook_dir = self.home_dir
        node, port = await super().start()
        self.ip = await self.node_address(node)
        self.log.info("server of %s: job %s on %s (%s:%s)", self.user.name, self.job_id, node,
                      self.ip, port)
        return self.ip, port

    async def sync_projects(self, uid: int, gid: int) -> list[str]:
        """Give the job its owner's team projects: Unix groups and ``~/projects/NAME`` links.

        On one machine the spawner adds the projects' groups to the server's process
        (:func:`echoes_lab.hub.services.projects.lab.preexec_fn`); a Slurm job instead gets
        the groups the account has in the group database, looked up by Slurm on the node
        (``getgrouplist(3)``, cached by ``slurmd`` for ``GroupUpdateTime``). So before each
        submission the account is made a member (``gpasswd -a``) of exactly its current
        projects' groups, and removed (``gpasswd -d``) from the groups of projects it left: the
        projects service restarts a leaver's servers, and the new job no longer has the group.
        The links are made as the user (root never follows a path in a user's home), by
        :func:`~echoes_lab.hub.services.projects.lab.sync_links`, as on one machine.

        Returns the names of the user's current projects.
        """
        root = (self.environment or {}).get("ECHOES_PROJECTS", "")
        if not root or not self.isolated:
            return []
        from echoes_lab.hub.services.projects import UNIX_PREFIX, unix_group
        from echoes_lab.hub.services.projects.lab import user_projects

        names = user_projects(self.user)
        account = self.system_user
        wanted = {unix_group(name) for name in names}
        groups = {g.gr_name: g.gr_mem for g in grp.getgrall() if g.gr_name.startswith(UNIX_PREFIX)}
        changes = [("-a", g) for g in sorted(wanted) if g in groups and account not in groups[g]]
        changes += [("-d", g) for g, members in sorted(groups.items())
                    if g not in wanted and account in members]
        for flag, group in changes:
            await self._run_checked(GPASSWD, flag, account, group)
        gids = [grp.getgrnam(g).gr_gid for g in sorted(wanted) if g in groups]
        try:
            await self._run_checked(
                # -I: not the home (the working folder) first on the module path
                sys.executable, "-I", "-c", _SYNC_LINKS, self.home_dir, root, *names,
                as_user={"user": uid, "group": gid, "extra_groups": gids}, cwd=self.home_dir)
        except RuntimeError as exc:
            # as on one machine, the lab still starts; the links come at the next start
            self.log.warning("could not update the project links of %s: %s", self.user.name,
                             exc)
        return names

    async def _run_checked(self, *argv: str, as_user: dict | None = None,
                           cwd: str | None = None) -> None:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={"PATH": f"{os.defpath}:/usr/sbin:/sbin", "LANG": "C.UTF-8"}, cwd=cwd,
            **(as_user or {}))
        out, _ = await proc.communicate()
        if proc.returncode:
            msg = f"{shlex.join(argv[:2])}… for {self.user.name}: {out.decode()[-500:]}"
            raise RuntimeError(msg)

    async def run_command(self, cmd, input=None, env=None):
        # batchspawner queries and cancels jobs with the hub's own environment, which holds
        # the proxy's token and the hub's secrets, in a process that then runs as the user
        # (readable in their /proc): those commands get Slurm's settings and a PATH only
        if env is None:
            env = {"PATH": f"{os.defpath}:/usr/sbin:/sbin", "LANG": "C.UTF-8"}
            if self.slurm_conf:
                env["SLURM_CONF"] = self.slurm_conf
        return await super().run_command(cmd, input=input, env=env)

    async def cancel_batch_job(self):
        try:
            await super().cancel_batch_job()
        except RuntimeError as exc:
            # a job that has ended already (its node failed, its time ran out) is not an error
            # to stop; one still there is
            if await self.query_job_status() != JobStatus.NOTFOUND:
                raise
            self.log.info("job %r of %s had ended already (%s)", self.job_id, self.user.name,
                          exc)

    async def node_address(self, node: str) -> str:
        """A node's address (``NodeAddr``) from the controller; its name if it has none."""
        if not re.fullmatch(r"[\w.-]+", node):
            msg = f"Slurm named the job's node {node!r}, not a host name"
            raise RuntimeError(msg)
        env = {**os.environ, **({"SLURM_CONF": self.slurm_conf} if self.slurm_conf else {})}
        proc = await asyncio.create_subprocess_exec(
            "scontrol", "show", "node", "-o", node, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        found = re.search(r"\bNodeAddr=(\S+)", out.decode())
        if proc.returncode or not found:
            self.log.warning("no NodeAddr for node %s (%s): using its name", node,
                             err.decode().strip())
            return node
        return found.group(1)
