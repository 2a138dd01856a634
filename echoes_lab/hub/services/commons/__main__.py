"""``python -m echoes_lab.hub.services.commons --settings FILE``: the commons (the hub runs it)."""

from echoes_lab.hub.services import run

#: the service's class, imported by :func:`~echoes_lab.hub.services.run` once the port listens
TARGET = "echoes_lab.hub.services.commons.app:CommonsService"

if __name__ == "__main__":
    run(TARGET)
