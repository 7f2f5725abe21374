"""berth's provisioner: facts -> plan -> diff -> apply -> verify, locally or over SSH."""

__version__ = "0.1.0"
