"""Pull: manifest (index -> this platform's manifest), config, then the layers the store lacks,
downloaded in parallel (max-concurrent-downloads), each streamed into the store with its digest
verified and unpacked as soon as it arrives. The image is recorded only when every layer is in;
an interrupted pull leaves only complete blobs and layers, which the next pull reuses.
"""

import json
import threading
import time

from runtime.errors import BerthError, InvalidParameter, NotFound
from runtime.registry import manifest as mf
from runtime.registry import session
from runtime.registry.progress import Progress, short_id
from runtime.registry.sources import record_image
from runtime.registry.transport import TransportError
from runtime.sha256 import sha256
from runtime.workers import Workers

MAX_CONFIG = 16 << 20
RETRIES = 3
RETRY_DELAY = 1


class PullCancelled(BerthError):
    """Another layer failed; this download stopped early."""


class _Reader(object):
    """File-like view of a blob response that reports progress and can be cancelled."""

    def __init__(self, resp, total, progress, id, cancel):
        self._chunks = resp.chunks()
        self._resp = resp
        self._buf = b""
        self.total = total
        self.done = 0
        self._progress = progress
        self._id = id
        self._cancel = cancel

    def read(self, n=-1):
        if self._cancel.is_set():
            self._resp.close(reuse=False)
            raise PullCancelled("cancelled")
        while not self._buf:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._buf = chunk
        if n is None or n < 0:
            n = len(self._buf)
        data, self._buf = self._buf[:n], self._buf[n:]
        self.done += len(data)
        self._progress.transfer("Downloading", self._id, self.done, self.total)
        return data


class Puller(object):
    """Pulls into `store` (runtime.store API: has_blob, open_blob, put_blob, has_layer,
    unpack_layer, create_image, resolve) with registry settings `regconfig`."""

    def __init__(self, store, regconfig, creds=None, progress=None, max_downloads=3, sources=None):
        self.store = store
        self.regconfig = regconfig
        self.creds = creds
        self.progress = Progress(progress)
        self.max_downloads = max(1, int(max_downloads or 3))
        self.sources = sources

    def pull(self, ref, platform=None):
        """Pull `ref` (runtime.registry.names.Reference); returns the image id."""
        want = mf.parse_platform(platform)

        def fetch(repo):
            raw, media_type, digest = repo.get_manifest(ref.reference)
            top = digest
            m = mf.Manifest(raw, media_type)
            if m.is_index:
                d = mf.select(m, want, ref.familiar_tagged())
                raw, media_type, digest = repo.get_manifest(d.digest)
                m = mf.Manifest(raw, media_type)
                if m.is_index:
                    raise InvalidParameter("%s: nested manifest lists are not supported" % ref.familiar)
            return m, top

        (m, top_digest), repo = session.run(self.regconfig, ref, self.creds, fetch)
        image_id = m.config.digest
        repo_digest = "%s@%s" % (ref.repository, top_digest)
        names = [ref.tagged()] if ref.tag else []
        status_name = ref.familiar_tagged()
        self.progress.status("Pulling from %s" % ref.path, id=ref.reference, detail=False)
        if self._up_to_date(ref, image_id):
            record_image(self.sources, repo, m)
            self.progress.status("Digest: %s" % top_digest)
            self.progress.status("Status: Image is up to date for %s" % status_name)
            return image_id
        config = self._config(repo, m.config)
        diff_ids = _diff_ids(config, len(m.layers), ref)
        self._layers(repo, m.layers, diff_ids)
        layers = [(d.digest, d.media_type, d.size) for d in m.layers]
        image_id = self.store.create_image(config, layers=layers, refs=names, repo_digest=repo_digest,
                                           manifest=m.raw, manifest_media_type=m.media_type)
        record_image(self.sources, repo, m)
        self.progress.status("Digest: %s" % top_digest)
        self.progress.status("Status: Downloaded newer image for %s" % status_name)
        return image_id

    def _up_to_date(self, ref, image_id):
        """True when the reference already names this image and all its layers are present."""
        try:
            if self.store.resolve(ref.tagged()) != image_id:
                return False
            return all(self.store.has_layer(d) for d in self.store.diff_ids(image_id))
        except (NotFound, InvalidParameter):
            return False

    def _config(self, repo, desc):
        """The config bytes: from the store when there, else downloaded and verified in memory
        (the store gets them with create_image, so a failed pull leaves no config behind)."""
        if self.store.has_blob(desc.digest):
            with self.store.open_blob(desc.digest) as f:
                return f.read()
        if desc.size > MAX_CONFIG:
            raise InvalidParameter("image config %s is %d bytes: too large" % (desc.digest, desc.size))
        data = repo.open_blob(desc.digest).read()
        got = "sha256:" + sha256(data).hexdigest()
        if got != desc.digest:
            raise InvalidParameter("image config digest mismatch: expected %s, got %s from %s"
                                   % (desc.digest, got, repo.endpoint.host))
        return data

    def _layers(self, repo, layers, diff_ids):
        """Fetch and unpack the missing layers in parallel; the first failure cancels the rest."""
        todo = []
        for desc, diff_id in zip(layers, diff_ids):
            # the image record names this blob: a layer unpacked from another blob (the same
            # tar uncompressed, say) does not spare the download
            if self.store.has_layer(diff_id) and self.store.has_blob(desc.digest):
                self.progress.status("Already exists", id=short_id(desc.digest))
            else:
                self.progress.status("Pulling fs layer", id=short_id(desc.digest))
                todo.append((desc, diff_id))
        for desc, _ in todo[self.max_downloads:]:
            self.progress.status("Waiting", id=short_id(desc.digest))
        if not todo:
            return
        cancel = threading.Event()
        errors = []
        unpacks = []

        def guarded(fn, *args):
            if cancel.is_set():
                return
            try:
                fn(*args)
            except BaseException as e:
                if not isinstance(e, PullCancelled):
                    errors.append(e)
                cancel.set()

        def download(item):
            guarded(self._download, repo, item[0], cancel)
            if not cancel.is_set():
                unpacks.append(unpacker.submit(guarded, self._unpack, item[0], item[1]))

        # Downloads run max_downloads at a time; each finished blob goes straight to an
        # unpacking thread, as many as downloads: the store unpacks each layer in its own temp
        # dir, and zlib, sha256 and the file writes run outside the GIL, so layers unpacked
        # side by side use every core (bench/pull.py: half the wall time of one unpacking
        # thread on 2 cores).
        workers = min(self.max_downloads, len(todo))
        with Workers(workers, "unpack") as unpacker:
            with Workers(workers, "download") as pool:
                pool.map(download, todo)
        if errors:
            raise errors[0]

    def _download(self, repo, desc, cancel):
        """Stream one layer blob into the store (digest verified), unless already there; a
        broken connection is retried (RETRIES times, as docker does) from the start."""
        sid = short_id(desc.digest)
        if self.store.has_blob(desc.digest):
            return
        for attempt in range(RETRIES + 1):
            try:
                resp = repo.open_blob(desc.digest)
                announced = resp.header("Content-Length")
                if announced and announced.isdigit() and int(announced) != desc.size:
                    resp.close(reuse=False)
                    raise InvalidParameter("the registry sends %s bytes, the manifest says %d"
                                           % (announced, desc.size))
                reader = _Reader(resp, desc.size, self.progress, sid, cancel)
                try:
                    self.store.put_blob(reader, expected_digest=desc.digest, size=desc.size)
                finally:
                    resp.close(reuse=False)
                break
            except TransportError:
                if attempt == RETRIES or cancel.is_set():
                    raise
            except InvalidParameter as e:
                raise InvalidParameter("layer %s from %s was rejected: %s"
                                       % (sid, repo.endpoint.host, e)) from None
            delay = RETRY_DELAY * (attempt + 1)
            self.progress.status("Retrying in %d second%s" % (delay, "s" if delay > 1 else ""), id=sid)
            time.sleep(delay)
        self.progress.transfer("Downloading", sid, desc.size, desc.size, force=True)
        self.progress.status("Verifying Checksum", id=sid)
        self.progress.status("Download complete", id=sid)

    def _unpack(self, desc, diff_id):
        """Unpack a stored layer blob and check it against the config's diff_id."""
        sid = short_id(desc.digest)
        self.progress.transfer("Extracting", sid, 0, desc.size, force=True)
        got = self.store.unpack_layer(desc.digest, desc.media_type, expected_diff_id=diff_id)
        if got != diff_id:
            raise InvalidParameter("layer %s unpacks to %s but the image config expects %s"
                                   % (sid, got, diff_id))
        self.progress.transfer("Extracting", sid, desc.size, desc.size, force=True)
        self.progress.status("Pull complete", id=sid)


def _diff_ids(config, count, ref):
    try:
        diff_ids = json.loads(config.decode("utf-8"))["rootfs"]["diff_ids"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidParameter("%s: image config has no rootfs.diff_ids" % ref.familiar_tagged()) from None
    if len(diff_ids) != count:
        raise InvalidParameter("%s: manifest has %d layers but the config lists %d"
                               % (ref.familiar_tagged(), count, len(diff_ids)))
    return diff_ids
