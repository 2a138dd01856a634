"""Exceptions raised by ECHOES Lab.

Every error a user can meet is one of these classes, with a message written for a museum
scientist: it names the file, the line or the field that is wrong and, where there is one,
the fix. The command line turns any of them into one line and a non-zero exit.
"""

from __future__ import annotations


class EchoesError(Exception):
    """Base class of every ECHOES Lab error; catch this to catch them all."""

    #: exit status the command line uses for this kind of error
    exit_code = 1


class SettingsError(EchoesError):
    """A deployment settings file is missing, unreadable or has a wrong key or value."""

    exit_code = 2


class SetupError(EchoesError):
    """Something the hub needs is missing on this machine (node, the proxy, a free port)."""

    exit_code = 3


class DataError(EchoesError):
    """Input data are malformed: a file, a column, a row or a value is not what it should be."""


class DatasetError(EchoesError):
    """A shared dataset is unknown, missing or fails its checksum."""


class UnsafeXMLError(DataError):
    """An XML file uses entities or external references, which are refused for safety."""


class SpectralError(DataError):
    """Spectra or an image cube are unusable: wavelength grids differ, values are missing or
    negative, or a file's header disagrees with its data (the message names file and field)."""


class ParameterError(EchoesError):
    """Notebook parameters do not match the notebook's ``parameters`` cell."""


class RunError(EchoesError):
    """A notebook run failed; the partial notebook is kept."""


class ClusterError(EchoesError):
    """A Dask cluster cannot be created or reached, or a request exceeds the limits."""


class HubError(EchoesError):
    """The hub's REST API refused or failed a request."""


class WorkshopError(EchoesError):
    """A workshop command cannot proceed: unknown workshop, bad seat count, name or end time,
    unreachable materials (the message names the workshop, the seat or the file)."""
