"""Image build: Dockerfiles run step by step on the engine, one layer per filesystem change.

    dockerfile.py  the parser (directives, continuations, flags, JSON forms) -> Instructions
    words.py       shell-style word splitting and $VAR expansion (Docker's ShellLex)
    ignore.py      .dockerignore patterns (Go's filepath.Match, `**`, `!` exceptions)
    context.py     the build context: a tar (plain or gzip) unpacked and checked, size-limited
    rootview.py    read-only view of an image's merged layers (no mount)
    copy.py        COPY/ADD: sources, checksums, the staged layer
    cache.py       step cache: key -> image id
    builder.py     stages and steps; RUN through the engine's containers
    service.py     the engine's `image_build` (what POST /build calls)
"""
