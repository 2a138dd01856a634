"""``python -m echoes_lab.hub.services.metrics --settings FILE``: Prometheus and the dashboard."""

from echoes_lab.hub.services import run

#: the service's class, imported by :func:`~echoes_lab.hub.services.run` once the port listens
TARGET = "echoes_lab.hub.services.metrics.app:MetricsService"

if __name__ == "__main__":
    run(TARGET)
