"""``python -m echoes_lab.hub.services.workshops --settings FILE``: the workshops service."""

from echoes_lab.hub.services import run

#: the service's class, imported by :func:`~echoes_lab.hub.services.run` once the port listens
TARGET = "echoes_lab.hub.services.workshops.service:WorkshopsService"

if __name__ == "__main__":
    run(TARGET)
