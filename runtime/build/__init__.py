"""Image build: Dockerfiles run step by step on the engine, one layer per filesystem change.

    dockerfile.py  the parser (directives, continuations, flags, JSON forms) -> Instructions
    words.py       shell-style word splitting and $VAR expansion (Docker's ShellLex)
    ignore.py      .dockerignore patterns (Go's filepath.Match, `**`, `!` exceptions)
    context.py     the build context: a tar (plain or gzip) spooled and indexed, size-limited
    meta.py        the config-only instructions (ENV, LABEL, CMD, ...)
    rootview.py    read-only view of an image's merged layers (no mount)
    copy.py        COPY/ADD: sources, checksums, the layer tar written from them; --chown ids
    cache.py       step cache: key -> image id; cachefrom.py: cachefrom images as cache
    builder.py     stages and steps
    runstep.py     RUN in a container of the engine, its writable layer as the step's
    service.py     BuildService: `image_build`, the backend of POST /build
"""
