"""``python -m echoes_lab.hub.services.projects --settings FILE``: the projects service."""

from echoes_lab.hub.services.projects.service import main

if __name__ == "__main__":
    main()
