"""The hub-side options of the ``kubernetes`` profile, run by its chart's ``extraConfig``.

``hub_config/kubernetes.yaml`` runs :func:`configure_kubernetes` in the hub pod after the
Zero-to-JupyterHub chart has configured KubeSpawner from its values. It applies, from the same
:data:`echoes_lab.hub.config.FEATURES` table as the local profile, every feature the profile's
settings enable, and adds what only Kubernetes needs:

* **per-project mounts**: the projects volume (one ReadWriteMany claim, one folder per project)
  is mounted into a user's pod once per project the user is a member of, each with the
  project's folder as ``subPath`` (:func:`project_mounts_hook`), so a pod sees its own
  projects' files and no other project's;
* the commons' database password, handed to the commons service only.

Features a Kubernetes hub cannot carry are refused with the reason
(:data:`NOT_ON_KUBERNETES`) rather than configured half-way; ``docs/kubernetes.md`` lists them.
"""

from __future__ import annotations

import os
from pathlib import Path

from echoes_lab.errors import SettingsError
from echoes_lab.hub.settings import Settings, load_settings

#: where the chart mounts the profile's settings file (``hub.extraFiles.echoes-settings``)
SETTINGS_PATH = "/usr/local/etc/echoes/settings.toml"
#: the pod volume holding every project's folder (``singleuser.storage.extraVolumes``)
PROJECTS_VOLUME = "echoes-projects"
#: where a user's pod sees its projects, one folder each (``ECHOES_PROJECTS`` in the pod)
PROJECTS_MOUNT = "/home/jovyan/projects"

#: features whose work the charts do themselves on this profile: the settings must disable them
BY_THE_CHARTS = {
    "idle-culler": "the chart's cull: (same timeout)",
    "dask-gateway": "the dask-gateway chart (its Kubernetes backend)",
}
#: features of the local profile this profile cannot carry (yet), and why
NOT_ON_KUBERNETES = {
    "workshops": "seats' homes, materials and archives are implemented for the local profile "
                 "only (echoes_lab.hub.services.workshops.homes)",
    "metrics": "the metrics service runs Debian's prometheus beside the hub; the hub image has "
               "none (scrape /hub/metrics with the cluster's own Prometheus)",
}
#: features with no service of their own to run there, and what that means on Kubernetes
HUB_MACHINE_ONLY = {
    "echoes-cli": "the echoes-lab command line reaches the hub with a token from the hub "
                  "machine's secrets file, which the hub pod does not have: a hub admin "
                  "creates a project through the REST API (group project-NAME with the "
                  "property echoes_project, its folder on the projects volume); members are "
                  "then managed on the projects page",
}


def _check(settings: Settings) -> None:
    from echoes_lab.hub.config import features

    for feature in features():
        why = BY_THE_CHARTS.get(feature.name) or NOT_ON_KUBERNETES.get(feature.name)
        if why and feature.enabled(settings):
            section = _section(feature.name)
            msg = (f"{settings.source}: [{section}] is enabled, but on the kubernetes profile "
                   f"{feature.name} is not run by the hub: {why}. Set [{section}] enabled = false")
            raise SettingsError(msg)


def _section(name: str) -> str:
    return {"idle-culler": "culler", "dask-gateway": "gateway"}.get(name, name)


def project_names(user) -> list[str]:
    """The projects ``user`` (JupyterHub's User or ORM user) is a member of, sorted."""
    from echoes_lab.hub.services.projects import GROUP_PREFIX, check_name, is_project_group

    # check_name again: a group's name becomes a path inside the volume (no '..', no '/')
    return sorted(check_name(g.name[len(GROUP_PREFIX):])
                  for g in user.groups if is_project_group(g))


def project_mounts_hook(volume: str = PROJECTS_VOLUME, mount_root: str = PROJECTS_MOUNT):
    """A KubeSpawner ``pre_spawn_hook`` mounting only the user's own projects.

    Each project the user belongs to (hub group ``project-NAME`` made by our tools) becomes a
    mount of ``volume`` at ``mount_root/NAME`` with ``subPath: NAME``; any mount of the whole
    volume is removed. Membership is read at each start: the projects service restarts a
    removed member's servers, so a former member's new pod no longer mounts the project.
    """

    def hook(spawner) -> None:
        wanted = {f"{volume}-{name}": {"name": volume, "mountPath": f"{mount_root}/{name}",
                                       "subPath": name}
                  for name in project_names(spawner.user)}
        mounts = spawner.volume_mounts
        # KubeSpawner takes a list, or a dict whose keys only order the mounts (the chart's
        # newer versions write dicts)
        if isinstance(mounts, dict):
            kept = {k: m for k, m in mounts.items() if m.get("name") != volume}
            spawner.volume_mounts = {**kept, **wanted}
        else:
            spawner.volume_mounts = [*(m for m in mounts if m.get("name") != volume),
                                     *wanted.values()]

    return hook


def configure_kubernetes(c, settings_file: str | Path | None = None) -> Settings:
    """Apply the profile's features to the chart's hub configuration ``c``.

    Parameters
    ----------
    c
        The hub's traitlets configuration, as the chart's ``extraConfig`` receives it.
    settings_file
        The profile's settings; default ``$ECHOES_SETTINGS`` or :data:`SETTINGS_PATH`.
    """
    from echoes_lab.hub.config import features

    settings = load_settings(settings_file or os.environ.get("ECHOES_SETTINGS", SETTINGS_PATH))
    _check(settings)
    if settings.auth.authenticator:  # else the chart's hub.config / hub.extraConfig choose
        from echoes_lab.hub.services.workshops.auth import load_authenticator

        site = load_authenticator(settings.auth.authenticator, settings.source)
        c.JupyterHub.authenticator_class = site
        c[site.__name__].update(settings.auth.options)
    if settings.hub.subdomain_host:  # each user's pod on its own origin, services at the hub's
        from echoes_lab.hub.config import subdomain

        c.JupyterHub.subdomain_host = settings.hub.subdomain_host
        c.JupyterHub.subdomain_hook = subdomain
    for feature in features():
        if feature.enabled(settings):
            feature.configure_hub(c, settings)
    if settings.projects.enabled:
        c.KubeSpawner.pre_spawn_hook = project_mounts_hook()
    # the commons' database password reaches only the commons service
    for service in c.JupyterHub.get("services", []):
        if service.get("name") == "commons":
            service.setdefault("environment", {})["PGPASSWORD"] = os.environ.get(
                "ECHOES_COMMONS_PGPASSWORD", "")
    return settings
