"""The interface the build route (runtime/api/routes/build.py) sees."""

import abc

from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, BinaryIO, Callable, Dict  # noqa: F401


class BuildBackend(abc.ABC):
    """Image builds from a Dockerfile (runtime/build)."""

    @abc.abstractmethod
    def image_build(self, stream, options, progress):
        # type: (BinaryIO, Dict[str, Any], Callable[[Dict[str, Any]], None]) -> str
        """`POST /build`: the context tar (plain or gzip) read from stream; options by
        Docker's parameter names (dockerfile, tags, buildargs, labels, target, nocache, pull,
        rm, forcerm, quiet, cachefrom, networkmode, platform, extrahosts, host_config, auth);
        progress(msg) gets Docker's JSON messages ({"stream"}, {"status"}, {"aux": {"ID"}}).
        Returns the image id; a failed step raises (the message names it)."""

    @abc.abstractmethod
    def build_prune(self, filters=None):
        # type: (Dict[str, Any]) -> Dict[str, Any]
        """`POST /build/prune`: forget the build step cache (filter `until`); returns
        {"CachesDeleted": [keys], "SpaceReclaimed": bytes}."""
