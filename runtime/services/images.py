"""ImageBackend implementation: see runtime/api/backend/images.py for the contract.

The store (runtime/store) keeps the bytes; this service shapes its answers as the Docker Engine
API's JSON (ImageSummary, ImageInspect, HistoryResponseItem). Pull and push go through the
registry client (runtime/services/registry.py).
"""

import fnmatch

from runtime import TYPE_CHECKING, filterargs
from runtime.api.backend.images import ImageBackend
from runtime.errors import Conflict, InvalidParameter, NotFound
from runtime.events import EventLog
from runtime.store import archive_load, archive_save, newlayer, reference
from runtime.store.images import ImageStore  # noqa: F401 (type comments)
from runtime.timefmt import ZERO_TIME, unix_time

if TYPE_CHECKING:
    from typing import Any, Callable, List  # noqa: F401


LIST_FILTERS = ("dangling", "label", "label!", "before", "since", "reference", "until")
PRUNE_FILTERS = ("dangling", "until", "label", "label!")


class ImageService(ImageBackend):
    """The images in `store` (an ImageStore); `registry` (a RegistryService) pulls and pushes;
    `users(image_id)` gives the ids of the containers made from an image (they keep it)."""

    def __init__(self, store, registry, users, events=None):
        # type: (ImageStore, Any, Callable[[str], List[str]], Any) -> None
        self.events = events if events is not None else EventLog()  # tag, untag, delete, load, import
        self.store = store
        self.registry = registry
        self._users = users

    def _image_users(self, image_id):
        # type: (str) -> list
        return list(self._users(image_id))

    # ------------------------------------------------------------ read

    def image_list(self, all_images=False, filters=None):
        """`GET /images/json`: ImageSummary dicts, newest first. Filters: reference, dangling,
        label."""
        filters = filters or {}
        out = []
        summaries = []
        names = self.store.refs.by_image()
        for image_id in self.store.ids():
            try:
                summaries.append(self._summary(image_id, names.get(image_id, [])))
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

    def _summary(self, image_id, names=None):
        # names: image_id's canonical names when the caller read them all at once
        # (refs.by_image), else they are read here
        parent, created, labels, size = self.store.listed(image_id)
        return {
            "Id": image_id, "ParentId": parent,
            "RepoTags": self.store.refs.tags_of(image_id, names),
            "RepoDigests": self.store.refs.digests_of(image_id, names),
            "Created": created, "Size": size, "SharedSize": -1, "Labels": labels, "Containers": -1,
        }

    def _created_of(self, ref):
        # type: (str) -> int
        return self.store.listed(self.store.resolve(ref))[1]

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
            "GraphDriver": {"Name": "vfs", "Data": None} if self.store.driver == "vfs" else {
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
        self.events.emit("image", "tag", self.store.resolve(name), {"name": reference.familiar(name)})

    def image_remove(self, ref, force=False, prune=True):
        """`DELETE /images/{name}`: untag / delete like docker rmi; Conflict while in use."""
        try:
            image_id = self.store.resolve(ref)
        except NotFound:
            image_id = ref
        out = self.store.remove(ref, force=force, in_use=self._image_users, prune=prune)
        for item in out:
            if "Untagged" in item:
                self.events.emit("image", "untag", image_id, {"name": item["Untagged"]})
            elif "Deleted" in item:
                self.events.emit("image", "delete", item["Deleted"], {"name": item["Deleted"]})
        return out

    def layers_size(self):
        # type: () -> int
        """Bytes of the distinct layers in the store (system df's LayersSize)."""
        seen = set()
        total = 0
        for image_id in self.store.ids():
            try:
                diff_ids = self.store.diff_ids(image_id)
            except (NotFound, OSError, ValueError):
                continue
            for d in diff_ids:
                if d not in seen:
                    seen.add(d)
                    total += self.store.layers.size(d)
        return total

    def image_prune(self, filters=None):
        """`POST /images/prune`: images no container uses; only untagged ones unless
        dangling=false. Filters: dangling, until, label, label!."""
        filters = filterargs.validate(filters, PRUNE_FILTERS)
        dangling = filterargs.truthy(filters, "dangling")
        dangling_only = True if dangling is None else dangling
        until = filterargs.until(filters)
        deleted, space = [], 0
        summaries = []
        names = self.store.refs.by_image()
        for image_id in self.store.ids():
            try:
                summaries.append(self._summary(image_id, names.get(image_id, [])))
            except NotFound:
                continue
        parents = {s["ParentId"] for s in summaries}
        for s in sorted(summaries, key=lambda s: s["Created"], reverse=True):
            if dangling_only and (s["RepoTags"] or s["Id"] in parents):
                continue
            if until is not None and s["Created"] >= until:
                continue
            if not filterargs.labels_match(filters, s["Labels"]) or self._image_users(s["Id"]):
                continue
            try:
                gone = self.store.remove(s["Id"], force=True, in_use=self._image_users)
            except (NotFound, Conflict):
                continue
            deleted.extend(gone)
            if any("Deleted" in g for g in gone):
                space += s["Size"]
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": space}

    def image_load(self, stream):
        """`POST /images/load`: returns the loaded references (or ids of untagged images)."""
        loaded = archive_load.load(self.store, stream)
        for name in loaded or []:
            self.events.emit("image", "load", name, {"name": name})
        return loaded

    def image_save(self, refs, out, fmt="docker"):
        """`GET /images/get`: docker-save tar (which is also an OCI layout) of refs to out."""
        archive_save.save(self.store, list(refs), out, fmt)

    def image_import(self, stream, repo=None, tag=None, changes=None, message=None):
        """`POST /images/create?fromSrc=-`: a rootfs tar as a one-layer image; returns its id."""
        refs = [reference.normalize_repo(repo, tag)] if repo else []
        image_id = newlayer.import_rootfs(self.store, stream, refs, changes, message)
        self.events.emit("image", "import", image_id, {"name": image_id})
        return image_id

    # ------------------------------------------------------------ registry

    def image_pull(self, name, tag=None, auth=None, platform=None, progress=None):
        return self.registry.pull(name, tag, auth, platform, progress)

    def image_push(self, name, tag=None, auth=None, progress=None):
        return self.registry.push(name, tag, auth, progress)



def _matches(summary, filters, created_of):
    # type: (dict, dict, object) -> bool
    filterargs.validate(filters, LIST_FILTERS)
    until = filterargs.until(filters)
    if until is not None and summary["Created"] >= until:
        return False
    if not filterargs.labels_match(filters, summary["Labels"]):
        return False
    for key, values in filters.items():
        if isinstance(values, dict):
            values = [k for k, v in values.items() if v]
        if key == "dangling":
            want = filterargs.truthy(filters, "dangling")
            if want != (not summary["RepoTags"]):
                return False
        elif key == "reference":
            names = summary["RepoTags"] + [t.rsplit(":", 1)[0] for t in summary["RepoTags"]]
            if not any(fnmatch.fnmatch(n, v) for v in values for n in names):
                return False
        elif key in ("before", "since"):
            for v in values:
                t = created_of(v)
                if (key == "before" and summary["Created"] >= t) or \
                        (key == "since" and summary["Created"] <= t):
                    return False
    return True

