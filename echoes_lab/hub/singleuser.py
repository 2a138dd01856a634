"""Start a user's JupyterLab server: ``jupyterhub-singleuser`` minus one needless second.

``rfc3987_syntax`` compiles a Lark grammar when imported (about 1 s of CPU per server start,
measured with ``python -X importtime``). jsonschema imports it only to check the ``iri``
string format, which none of Jupyter's event schemas use (they use ``date-time`` and ``uri``).
Blocking that import makes jsonschema leave out the one unused format checker; nothing a user
sees changes, and a burst of 30 workshop logins saves 30 CPU-seconds.
"""

import sys

if __name__ == "__main__":
    sys.modules.setdefault("rfc3987_syntax", None)  # import now raises ImportError, as if absent
    from jupyterhub.singleuser import main

    sys.exit(main())
