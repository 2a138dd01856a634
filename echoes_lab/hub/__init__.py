"""Hub-side parts of ECHOES Lab: settings, secrets, the spawner and the launcher.

Notebook users never import these; ``hub_config/jupyterhub_config.py`` and the ``echoes-lab``
command line do.
"""

from pathlib import Path

_HERE = Path(__file__).resolve().parent
#: Files the hub needs at run time ship inside the package: ``hub_config/`` (the profiles'
#: settings, the loaders JupyterHub and Dask Gateway read, the lab's default settings) and
#: ``kernels/`` (the ECHOES kernel spec). In a checkout both are links to the top-level folders
#: of the same names, the one copy people edit; a wheel holds the files themselves.
HUB_CONFIG_DIR = _HERE / "hub_config"
KERNELS_DIR = _HERE / "kernels"
