"""The engine's build verb (`image_build`, what `POST /build` calls): the context in, the
Dockerfile parsed, the builder run, the context's spool removed whatever happens.

The builder and the Dockerfile parser are imported by the first build: a daemon that never
builds does not hold them (1 MB of berthd's memory on Python 3.6, 17 ms of its start)."""

import os

from runtime.api.backend.build import BuildBackend
from runtime.build import ignore
from runtime.build.context import DEFAULT_LIMIT, Context, clean
from runtime.build.cache import StepCache
from runtime.errors import InvalidParameter
from runtime import TYPE_CHECKING, filterargs

if TYPE_CHECKING:
    from typing import Any  # noqa: F401


class BuildService(BuildBackend):
    """Builds on the engine's parts: the image store, the container service (RUN steps), the
    container index (a RUN container's /etc/hosts) and the registry service (FROM pulls).
    `context_limit` caps a context's uncompressed size."""

    def __init__(self, data_root, store, containers, index, registry, context_limit=DEFAULT_LIMIT):
        # type: (str, Any, Any, Any, Any, int) -> None
        self.data_root = data_root
        self.store = store
        self.containers = containers
        self.index = index
        self.registry = registry
        self.context_limit = context_limit
        self._clean_spools()

    def _clean_spools(self):
        # type: () -> None
        """Remove the context spools of builds whose process is gone (a crash mid-build);
        their names carry the pid: context-<pid>-..."""
        tmp = os.path.join(self.data_root, "build", "tmp")
        try:
            names = os.listdir(tmp)
        except FileNotFoundError:
            return
        for name in names:
            try:
                os.kill(int(name.split("-")[1]), 0)
                continue
            except (IndexError, ValueError, ProcessLookupError):
                pass
            except PermissionError:
                continue
            try:
                os.unlink(os.path.join(tmp, name))
            except OSError:
                pass

    def image_build(self, stream, options, progress):
        # type: (Any, dict, Any) -> str
        """Build from a context tar (plain or gzip) read from stream; options by Docker's
        parameter names (runtime.build.builder.Options); progress(msg) gets Docker's JSON
        messages. Returns the image id; a failure raises (BuildError for a step) and leaves
        only the images of the steps that succeeded (the cache)."""
        from runtime.build import dockerfile
        from runtime.build.builder import Builder, Options
        if not isinstance(options, Options):
            options = Options(**options)
        root = os.path.join(self.data_root, "build")
        os.makedirs(os.path.join(root, "tmp"), exist_ok=True)
        ctx = Context(stream, os.path.join(root, "tmp"), self.context_limit)
        try:
            try:
                name = clean(options.dockerfile)
            except InvalidParameter:
                raise InvalidParameter("the Dockerfile (%s) must be within the build context"
                                       % options.dockerfile) from None
            entry = ctx.lstat(ctx.realpath(name))
            if entry is None or entry.kind != "file":
                raise InvalidParameter("Cannot locate specified Dockerfile: %s" % options.dockerfile)
            with ctx.open(ctx.realpath(name)) as f:
                df = dockerfile.parse(f.read())
            ig = ctx.lstat(".dockerignore")
            if ig is not None and ig.kind == "file":
                with ctx.open(".dockerignore") as f:
                    ctx.apply_ignore(ignore.read_patterns(f.read().decode("utf-8", "replace")))
            builder = Builder(self, ctx, df, options, progress, os.path.join(root, "cache"))
            return builder.build()
        finally:
            ctx.close()

    def build_prune(self, filters=None):
        filters = filterargs.validate(filters, ("until",))
        before = filterargs.until(filters)
        cache = StepCache(os.path.join(self.data_root, "build", "cache"))
        deleted, size = cache.prune(before)
        return {"CachesDeleted": deleted or None, "SpaceReclaimed": size}
