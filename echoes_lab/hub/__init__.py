"""Hub-side parts of ECHOES Lab: settings, secrets, the spawner and the launcher.

Notebook users never import these; ``hub_config/jupyterhub_config.py`` and the ``echoes-lab``
command line do.
"""
