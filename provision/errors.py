"""The provisioner's exception tree. Every error ends one host with one clear line.

ProvisionError          what went wrong and how to fix it, for one host (``.host``)
 ├── ConnectError       unreachable host, refused auth, unknown host key
 ├── SudoError          no or wrong sudo password
 ├── FactError          facts could not be read or make no sense
 ├── UnsupportedError   the target's OS/arch is not one provision supports
 ├── InputError         bad option or template input (mirror URL, template variable)
 └── StepError          a step could not be planned or applied (``.result`` when a command failed)
"""

from __future__ import annotations

from typing import Any


class ProvisionError(Exception):
    """Base of all provision errors: ``str(err)`` is the one line shown to the user."""

    def __init__(self, message: str, host: str | None = None, result: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.host = host
        self.result = result

    def __str__(self) -> str:
        return self.message


class ConnectError(ProvisionError):
    """The host cannot be reached or refused us (network, auth, host key)."""


class SudoError(ProvisionError):
    """Privilege escalation failed (password missing or wrong)."""


class FactError(ProvisionError):
    """Facts could not be gathered or parsed."""


class UnsupportedError(ProvisionError):
    """The target is an OS or architecture provision refuses."""


class InputError(ProvisionError):
    """Bad input from the user: an option, a mirror URL, a template variable."""


class StepError(ProvisionError):
    """A step failed while planning or applying."""
