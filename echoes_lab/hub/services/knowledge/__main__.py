"""``python -m echoes_lab.hub.services.knowledge --settings FILE``: the SPARQL service."""

from echoes_lab.hub.services import run

#: the service's class, imported by :func:`~echoes_lab.hub.services.run` once the port listens
TARGET = "echoes_lab.hub.services.knowledge.app:KnowledgeService"

if __name__ == "__main__":
    run(TARGET)
