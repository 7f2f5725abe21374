"""Push: the image's manifest from the store, then each blob the registry lacks (HEAD first;
a cross-repository mount when another repository on the same registry is known to hold it;
else an upload, monolithic or in chunks), in parallel, and finally the manifest PUT."""

import threading

from runtime.errors import NotFound
from runtime.registry import manifest as mf
from runtime.registry import session
from runtime.registry.progress import Progress, short_id
from runtime.registry.sources import record_image
from runtime.workers import Workers

DEFAULT_CHUNK = 32 << 20


class Pusher(object):
    """Pushes from `store` (runtime.store API: resolve, image_manifest, open_blob) to the
    registry `regconfig` points at."""

    def __init__(self, store, regconfig, creds=None, progress=None, max_uploads=5, chunk_size=None,
                 sources=None):
        self.store = store
        self.regconfig = regconfig
        self.creds = creds
        self.progress = Progress(progress)
        self.max_uploads = max(1, int(max_uploads or 5))
        self.chunk_size = int(chunk_size or DEFAULT_CHUNK)
        self.sources = sources

    def push(self, ref):
        """Push `ref` (a tagged runtime.registry.names.Reference); returns the manifest digest."""
        try:
            image_id = self.store.resolve(ref.tagged())
        except NotFound:
            raise NotFound("An image does not exist locally with the tag: %s" % ref.familiar) from None
        raw, media_type = self.store.image_manifest(image_id)
        m = mf.Manifest(raw, media_type)
        if m.is_index:
            raise NotFound("%s is a manifest list: push its images one by one" % ref.familiar_tagged())
        for d in [m.config] + m.layers:
            if not self.store.has_blob(d.digest):
                raise NotFound("blob %s of %s is missing from the image store: pull or load the "
                               "image again" % (d.digest, ref.familiar_tagged()))

        def probe(repo):
            repo.ping()
            return None

        _, repo = session.run(self.regconfig, ref, self.creds, probe, push=True)
        self.progress.status("The push refers to repository [%s]" % ref.repository)
        layers = list(reversed(m.layers))
        for d in layers:
            self.progress.status("Preparing", id=short_id(d.digest))
        for d in layers[self.max_uploads:]:
            self.progress.status("Waiting", id=short_id(d.digest))
        errors = []
        stop = threading.Event()

        def work(desc, quiet=False):
            if stop.is_set():
                return
            try:
                self._blob(repo, desc, quiet)
            except BaseException as e:
                errors.append(e)
                stop.set()

        with Workers(min(self.max_uploads, len(layers) or 1), "upload") as pool:
            pool.map(work, layers)
        if not errors:
            work(m.config, quiet=True)
        if errors:
            raise errors[0]
        digest = repo.put_manifest(ref.reference, raw, m.media_type)
        record_image(self.sources, repo, m)
        self.progress.status("%s: digest: %s size: %d" % (ref.reference, digest, len(raw)))
        self.progress.emit({"progressDetail": {}, "aux": {"Tag": ref.reference, "Digest": digest,
                                                          "Size": len(raw)}})
        return digest

    def _blob(self, repo, desc, quiet):
        sid = short_id(desc.digest)
        if repo.blob_size(desc.digest) is not None:
            if not quiet:
                self.progress.status("Layer already exists", id=sid)
            return
        location = None
        if self.sources is not None:
            for source in self.sources.candidates(desc.digest, repo.endpoint.host, exclude=repo.path):
                got = repo.mount(desc.digest, source)
                if got is True:
                    if not quiet:
                        self.progress.status("Mounted from %s" % source, id=sid)
                    return
                location = got
                break
        size = desc.size

        def report(n):
            if not quiet:
                self.progress.transfer("Pushing", sid, n, size)

        with self.store.open_blob(desc.digest) as f:
            repo.upload(desc.digest, f, size, location=location, chunk_size=self.chunk_size,
                        progress=report)
        if not quiet:
            self.progress.status("Pushed", id=sid)
