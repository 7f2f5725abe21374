"""ImageBackend implementation: see runtime/api/backend.py for the contract.

The store (runtime/store) keeps the bytes; this mixin shapes its answers as the Docker Engine
API's JSON (ImageSummary, ImageInspect, HistoryResponseItem).
"""

import fnmatch
import os
import stat

from runtime.api.backend import ImageBackend
from runtime.errors import InvalidParameter, NotFound
from runtime.store import archive_load, archive_save, driver, newlayer, reference
from runtime.store.images import ImageStore
from runtime.timefmt import ZERO_TIME, unix_time


class ImageService(ImageBackend):
    """Mixin of runtime.engine.Engine: `self.store` is the ImageStore under data_root/image,
    `self.storage` the storage driver choice (runtime/store/driver.py)."""

    def __init__(self):
        # type: () -> None
        root = os.path.join(self.data_root, "image")
        self.storage = driver.choose(self.data_root, root, self.config.get("storage-driver"))
        self.store = ImageStore(root, self.storage.name)
        self.store.clean_tmp()

    def _image_users(self, image_id):
        # type: (str) -> list
        # containers_using_image is ContainerService's (the Engine composes both)
        return list(self.containers_using_image(image_id))  # type: ignore

    # ------------------------------------------------------------ read

    def image_list(self, all_images=False, filters=None):
        """`GET /images/json`: ImageSummary dicts, newest first. Filters: reference, dangling,
        label."""
        filters = filters or {}
        out = []
        summaries = []
        for image_id in self.store.ids():
            try:
                summaries.append(self._summary(image_id))
            except NotFound:
                continue  # removed meanwhile
        parents = {s["ParentId"] for s in summaries}
        for s in summaries:
            if not all_images and not s["RepoTags"] and s["Id"] in parents:
                continue  # an intermediate image, as docker hides them without --all
            if _matches(s, filters, self._created_of):
                out.append(s)
        out.sort(key=lambda s: (s["Created"], s["Id"]), reverse=True)
        return out

    def _summary(self, image_id):
        cfg = self.store.image_config(image_id)
        rec = self.store.record(image_id)
        return {
            "Id": image_id, "ParentId": rec.get("parent") or "",
            "RepoTags": self.store.refs.tags_of(image_id),
            "RepoDigests": self.store.refs.digests_of(image_id),
            "Created": unix_time(cfg.get("created")), "Size": self.store.size(image_id),
            "SharedSize": -1, "Labels": (cfg.get("config") or {}).get("Labels") or {},
            "Containers": -1,
        }

    def _created_of(self, ref):
        # type: (str) -> int
        return unix_time(self.store.image_config(self.store.resolve(ref)).get("created"))

    def image_inspect(self, ref):
        """`GET /images/{name}/json`: ImageInspect."""
        image_id = self.store.resolve(ref)
        cfg = self.store.image_config(image_id)
        rec = self.store.record(image_id)
        dirs = self.store.layer_dirs(image_id)
        return {
            "Id": image_id,
            "RepoTags": self.store.refs.tags_of(image_id),
            "RepoDigests": self.store.refs.digests_of(image_id),
            "Parent": rec.get("parent") or "",
            "Comment": cfg.get("comment", ""),
            "Created": cfg.get("created", ""),
            "DockerVersion": cfg.get("docker_version", ""),
            "Author": cfg.get("author", ""),
            "Config": cfg.get("config") or {},
            "Architecture": cfg.get("architecture", ""),
            "Variant": cfg.get("variant", ""),
            "Os": cfg.get("os", ""),
            "OsVersion": cfg.get("os.version", ""),
            "Size": self.store.size(image_id),
            "GraphDriver": {"Name": "vfs", "Data": None} if self.storage.name == "vfs" else {
                "Name": "overlay2", "Data": {
                    "LowerDir": ":".join(reversed(dirs[:-1])),
                    "UpperDir": dirs[-1] if dirs else "", "MergedDir": "", "WorkDir": ""}},
            "RootFS": {"Type": "layers", "Layers": self.store.diff_ids(image_id)},
            "Metadata": {"LastTagTime": rec.get("lastTagTime", ZERO_TIME)},
        }

    def image_history(self, ref):
        """`GET /images/{name}/history`: newest first; layer sizes beside non-empty steps."""
        image_id = self.store.resolve(ref)
        cfg = self.store.image_config(image_id)
        diff_ids = self.store.diff_ids(image_id)
        history = cfg.get("history") or [{} for _ in diff_ids]
        items, layer = [], 0
        for h in history:
            size = 0
            if not h.get("empty_layer") and layer < len(diff_ids):
                size = self.store.layers.size(diff_ids[layer])
                layer += 1
            items.append({"Id": "<missing>", "Created": unix_time(h.get("created")),
                          "CreatedBy": h.get("created_by", ""), "Tags": None, "Size": size,
                          "Comment": h.get("comment", "")})
        items.reverse()
        if items:
            items[0]["Id"] = image_id
            items[0]["Tags"] = self.store.refs.tags_of(image_id) or None
        return items

    # ------------------------------------------------------------ write

    def image_tag(self, ref, repo, tag=None):
        """`POST /images/{name}/tag`."""
        name = reference.normalize_repo(repo, tag)
        if "@" in name:
            raise InvalidParameter("refusing to create a tag with a digest reference: %s"
                                   % reference.familiar(name))
        self.store.tag(ref, name)

    def image_remove(self, ref, force=False, prune=True):
        """`DELETE /images/{name}`: untag / delete like docker rmi; Conflict while in use."""
        return self.store.remove(ref, force=force, in_use=self._image_users)

    def image_load(self, stream):
        """`POST /images/load`: returns the loaded references (or ids of untagged images)."""
        return archive_load.load(self.store, stream)

    def image_save(self, refs, out, fmt="docker"):
        """`GET /images/get`: docker-save tar (which is also an OCI layout) of refs to out."""
        archive_save.save(self.store, list(refs), out, fmt)

    def image_import(self, stream, repo=None, tag=None, changes=None, message=None):
        """`POST /images/create?fromSrc=-`: a rootfs tar as a one-layer image; returns its id."""
        refs = [reference.normalize_repo(repo, tag)] if repo else []
        return newlayer.import_rootfs(self.store, stream, refs, changes, message)

    def image_commit(self, container, repo=None, tag=None, changes=None, message=None, author=None,
                     config=None, pause=True):
        """`POST /commit`: the container's writable layer (`self.container_upper_dir(name)`)
        becomes a new layer on its image (`container_inspect(name)["Image"]`), with the
        container's config (overridden by config, then changes) as the image config; a running
        container is paused around the copy when pause is true."""
        info = self.container_inspect(container)
        upper = self.container_upper_dir(container)
        refs = [reference.normalize_repo(repo, tag)] if repo else []
        base = {k: v for k, v in (info.get("Config") or {}).items() if k in IMAGE_CONFIG_KEYS}
        base.update(config or {})
        own = "HOSTNAME=%s" % (info.get("Config") or {}).get("Hostname")
        if base.get("Env"):
            base["Env"] = [e for e in base["Env"] if e != own]
        state = info.get("State") or {}
        paused = False
        if pause and state.get("Running") and not state.get("Paused"):
            self.container_pause(container)
            paused = True
        try:
            return newlayer.commit(self.store, upper, info["Image"], refs, changes, message,
                                   author, base, info.get("Id", ""), _mount_points(upper))
        finally:
            if paused:
                self.container_unpause(container)


IMAGE_CONFIG_KEYS = ("User", "ExposedPorts", "Env", "Cmd", "Healthcheck", "ArgsEscaped",
                     "Volumes", "WorkingDir", "Entrypoint", "OnBuild", "Labels", "StopSignal",
                     "StopTimeout", "Shell")


def _mount_points(upper):
    # type: (str) -> tuple
    """Paths the runtime created in the upper dir only as mount points (empty files for the
    /etc/hosts-style bind mounts, empty dirs for /proc, /sys, /dev): left out of a commit, as
    Docker leaves out its init layer."""
    out = []
    for rel in ("etc/hostname", "etc/hosts", "etc/resolv.conf", "proc", "sys", "dev", ".dockerenv"):
        p = os.path.join(upper, rel)
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if (stat.S_ISREG(st.st_mode) and st.st_size == 0) or (stat.S_ISDIR(st.st_mode)
                                                               and not os.listdir(p)):
            out.append(rel)
    return tuple(out)


def _matches(summary, filters, created_of):
    # type: (dict, dict, object) -> bool
    for key, values in filters.items():
        if isinstance(values, dict):
            values = [k for k, v in values.items() if v]
        if key == "dangling":
            want = any(str(v).lower() in ("true", "1") for v in values)
            if want != (not summary["RepoTags"]):
                return False
        elif key == "reference":
            names = summary["RepoTags"] + [t.rsplit(":", 1)[0] for t in summary["RepoTags"]]
            if not any(fnmatch.fnmatch(n, v) for v in values for n in names):
                return False
        elif key == "label":
            labels = summary["Labels"]
            for v in values:
                k, eq, val = v.partition("=")
                if k not in labels or (eq and labels[k] != val):
                    return False
        elif key in ("before", "since"):
            for v in values:
                t = created_of(v)
                if (key == "before" and summary["Created"] >= t) or \
                        (key == "since" and summary["Created"] <= t):
                    return False
        else:
            raise InvalidParameter("invalid filter %r for images" % key)
    return True

