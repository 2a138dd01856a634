"""The services that run beside the hub, one package each (see ``ARCHITECTURE.md``)."""
