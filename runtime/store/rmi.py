"""`docker rmi`: untag, and delete an image when nothing needs it any more (its layers and blobs
go too when no other image shares them). Called by ImageStore.remove/_delete under its lock."""


from runtime.errors import Conflict, NotFound
from runtime.store import reference


def remove(store, ref, force=False, in_use=lambda image_id: [], prune=True):
    # type: (object, str, bool, object, bool) -> list
    """`docker rmi`: untag a name, and delete the image when no name is left; by id,
    untag all (forced when it has several repositories) and delete. An image a container
    uses (in_use(id) -> container ids) is kept: Conflict unless forced, and then only
    untagged. With prune, the untagged parents left without a child or a container go too
    (a build's intermediate images). Returns [{"Untagged": name}, {"Deleted": id}, ...]."""
    with store.lock:
        image_id = store.resolve(ref)
        names = store.refs.of(image_id)
        by_id = store.named_by_id(ref, image_id)
        out = []
        users = in_use(image_id)
        if not by_id:
            name = reference.normalize(ref)
            tags_left = [n for n in names if n != name and "@" not in n]
            if tags_left:
                store.refs.delete([name])
                return [{"Untagged": reference.familiar(name)}]
            if users and not force:
                raise Conflict("conflict: unable to remove repository reference %r (must force)"
                               " - container %s is using its referenced image %s"
                               % (ref, users[0][:12], image_id[7:19]))
            drop = names
        else:
            repos = {reference.repository(n) for n in names}
            if len(repos) > 1 and not force:
                raise Conflict("conflict: unable to delete %s (must be forced) - image is "
                               "referenced in multiple repositories" % image_id[7:19])
            if users and not force:
                raise Conflict("conflict: unable to delete %s (must be forced) - image is "
                               "being used by container %s" % (image_id[7:19], users[0][:12]))
            drop = names
        children = [i for i in store.ids() if i != image_id and _parent(store, i) == image_id]
        if by_id and children:
            raise Conflict("conflict: unable to delete %s (cannot be forced) - image has "
                           "dependent child images" % image_id[7:19])
        store.refs.delete(drop)
        out.extend({"Untagged": reference.familiar(n)} for n in drop)
        if users or children:
            return out  # a container or a child image still needs it
        parent = _parent(store, image_id)
        delete(store, image_id)
        out.append({"Deleted": image_id})
        while prune and parent and store.has_image(parent):  # (a parent removed with -f is gone)
            if store.refs.of(parent) or in_use(parent) or any(
                    _parent(store, i) == parent for i in store.ids()):
                break
            up = _parent(store, parent)
            delete(store, parent)
            out.append({"Deleted": parent})
            parent = up
        return out


def _parent(store, image_id):
    # type: (object, str) -> str
    try:
        return store.record(image_id).get("parent") or ""
    except NotFound:
        return ""


def delete(store, image_id):
    # type: (object, str) -> None
    """Remove the image record, its config, and every layer/blob no other image uses."""
    rec = store.record(image_id)
    used_layers, used_blobs = set(), set()
    for other in store.ids():
        if other == image_id:
            continue
        try:
            orec = store.record(other)
        except NotFound:
            continue
        used_blobs.add(other)
        used_blobs.update(lay["digest"] for lay in orec["layers"])
        used_layers.update(lay["diffId"] for lay in orec["layers"])
        if orec.get("manifest"):
            used_blobs.add(orec["manifest"])
    store.delete_record(image_id)
    for lay in rec["layers"]:
        if lay["diffId"] not in used_layers:
            store.layers.remove(lay["diffId"], (lay["digest"],))
        if lay["digest"] not in used_blobs:
            store.blobs.remove(lay["digest"])
    for digest in (image_id, rec.get("manifest")):
        if digest and digest not in used_blobs:
            store.blobs.remove(digest)
