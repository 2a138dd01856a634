"""The hub process: JupyterHub, stopping its managed services all at once.

``echoes-lab hub`` runs ``python -m echoes_lab.hub.app -f <jupyterhub_config.py>``; every
option is JupyterHub's own. The one change is the shutdown. JupyterHub 6.1 stops its managed
services one after another (``JupyterHub.cleanup``), each with SIGINT, then polls until it has
exited: the wait is the sum over the services. With seven services on a loaded machine
(2-4 s each to exit under ``make test``) a SIGTERM to the hub's own pid — an operator's
``kill``, systemd, a container runtime — took longer than 30 s, while the proxy and the hub
kept answering (issue 27). Asked at the same time, the services exit together: the wait is the
slowest one's. The rest of the cleanup (proxy, pid file; users' servers are left running) is
JupyterHub's, which then finds every service already stopped.

And the services get a working SIGINT. A background job of a non-interactive shell (``make hub
&``, a CI script) starts with SIGINT ignored, and an ignored signal stays ignored across
``exec``; JupyterHub starts its services before it installs its own handlers, so they inherited
it, and JupyterHub waits 30 s (``interrupt_timeout``) after its SIGINT before a SIGTERM: the idle
culler, which has no handler of its own, held every such shutdown for 30 s (the issue's 31 s).
A caught signal is reset to its default at ``exec``: caught here, it reaches the services whole.
"""

from __future__ import annotations

import asyncio
import signal

from jupyterhub.app import JupyterHub


class EchoesHub(JupyterHub):
    """JupyterHub whose shutdown stops the managed services concurrently, and whose Python
    services are forked from one process that imported what they share
    (:mod:`echoes_lab.hub.launch.zygote`)."""

    def init_services(self):
        super().init_services()
        # started now, the fork server imports while the hub initialises the rest
        from echoes_lab.hub.launch.zygote import install

        self._zygote = install(self)

    async def start_service(self, service_name, service, ssl_context=None):
        zygote = getattr(self, "_zygote", None)
        if zygote is not None and not zygote.ready:
            # the hub listens already: wait for the fork server's imports in a thread, not in
            # the event loop (a fork asked of it meanwhile would block the hub's requests)
            await asyncio.get_running_loop().run_in_executor(None, zygote.wait_ready)
        return await super().start_service(service_name, service, ssl_context)

    async def cleanup(self):
        managed = [s for s in self._service_map.values() if s.managed]
        if managed:
            self.log.info("Stopping %i services at once...", len(managed))
            results = await asyncio.gather(*(s.stop() for s in managed),
                                           return_exceptions=True)
            for service, result in zip(managed, results, strict=True):
                if isinstance(result, Exception):
                    self.log.error("Failed to stop service %s: %s", service.name, result)
        # a stopped service's spawner answers its second stop at once (it polls as ended)
        await super().cleanup()
        if getattr(self, "_zygote", None) is not None:
            self._zygote.close()


def main(argv: list[str] | None = None) -> None:
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    EchoesHub.launch_instance(argv)


if __name__ == "__main__":
    main()
