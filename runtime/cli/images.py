"""Image commands: images, tag, rmi, load, save, import, commit, history, pull, push."""

import sys

from runtime.cli import fmt
from runtime.cli import jsonfast as json
from runtime.cli.client import APIError



def split_ref(ref):
    # type: (str) -> Tuple[str, Optional[str]]
    """(repository, tag or digest or None) of a reference."""
    if "@" in ref:
        repo, _, digest = ref.partition("@")
        return repo, digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, None


def normalize(ref):
    # type: (str) -> str
    """The reference with its default tag, as docker prints it (busybox -> busybox:latest)."""
    repo, tag = split_ref(ref)
    if tag is None:
        return repo + ":latest"
    return ref


def registry_of(repo):
    # type: (str) -> str
    """The registry host of a repository name (Docker Hub when the first part is no host)."""
    first, sep, _ = repo.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "https://index.docker.io/v1/"


def auth_header(repo):
    # type: (str) -> Dict[str, str]
    """X-Registry-Auth from `berth login`'s stored credentials (empty object when none)."""
    from runtime.cli import credentials
    creds = credentials.load(registry_of(repo))  # InvalidParameter when the file is unusable
    import binascii
    raw = json.dumps(creds or {}).encode()
    encoded = binascii.b2a_base64(raw).strip().decode().replace("+", "-").replace("/", "_")
    return {"X-Registry-Auth": encoded}


def pull(client, ref, out=None):
    # type: (Any, str, Any) -> None
    """Pull through the daemon, rendering its progress stream; fmt.StreamError on failure."""
    repo, tag = split_ref(ref)
    resp = client.send("POST", "/images/create", {"fromImage": repo, "tag": tag or "latest"},
                       headers=auth_header(repo))
    progress = fmt.Progress(out or sys.stdout)
    for msg in resp.json_stream():
        progress.show(msg)


def _err(exc):
    # type: (Exception) -> int
    prefix = "Error response from daemon: " if isinstance(exc, APIError) else ""
    sys.stderr.write("%s%s\n" % (prefix, exc))
    return 1


def parser_pull(p):
    """Flags of `berth pull`."""
    p.add_argument("image")


def cmd_pull(client, args):
    """`berth pull NAME[:TAG|@DIGEST]`."""
    try:
        pull(client, args.image)
    except (APIError, fmt.StreamError) as exc:
        return _err(exc)
    print(normalize(args.image) if "@" not in args.image else args.image)
    return 0


def parser_push(p):
    """Flags of `berth push`."""
    p.add_argument("image")


def cmd_push(client, args):
    """`berth push NAME[:TAG]`."""
    repo, tag = split_ref(args.image)
    try:
        resp = client.send("POST", "/images/%s/push" % repo, {"tag": tag}, headers=auth_header(repo))
        progress = fmt.Progress(sys.stdout)
        for msg in resp.json_stream():
            progress.show(msg)
    except (APIError, fmt.StreamError) as exc:
        return _err(exc)
    return 0


def parser_images(p):
    """Flags of `berth images`."""
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--digests", action="store_true", help="(accepted)")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="key=value (dangling, label, reference...)")
    p.add_argument("--format", help="Go template (table ..., {{.Repository}}, {{json .}})")
    p.add_argument("repository", nargs="?")


IMAGE_HEADERS = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
                 "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                 "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
                 "VirtualSize": "SIZE"}


def cmd_images(client, args):
    """`berth images`: REPOSITORY TAG IMAGE ID CREATED SIZE."""
    query = {"all": args.all or None}
    from runtime.cli.opts import filters_arg
    items = list(args.filter) + (["reference=" + args.repository] if args.repository else [])
    query["filters"] = filters_arg(items)
    rows, contexts = [], []
    for img in client.get("/images/json", query) or []:
        ident = img["Id"] if args.no_trunc else fmt.short_id(img["Id"])
        tags = img.get("RepoTags") or []
        if not tags:
            digests = img.get("RepoDigests") or []
            tags = [d.partition("@")[0] + ":<none>" for d in digests] or ["<none>:<none>"]
        for rt in tags:
            repo, tag = split_ref(rt) if rt != "<none>:<none>" else ("<none>", "<none>")
            rows.append([repo, tag or "<none>", ident, fmt.since(img.get("Created") or 0),
                         fmt.human_size(img.get("Size") or 0)])
            digest = [d.partition("@")[2] for d in img.get("RepoDigests") or []
                      if d.partition("@")[0] == repo]
            contexts.append({"ID": ident, "Repository": repo, "Tag": tag or "<none>",
                             "Digest": digest[0] if digest else "<none>", "CreatedSince": rows[-1][3],
                             "CreatedAt": str(img.get("Created") or 0), "Size": rows[-1][4],
                             "VirtualSize": rows[-1][4], "Containers": "N/A",
                             "SharedSize": "N/A", "UniqueSize": "N/A"})
    if args.format and not args.quiet:
        from runtime.cli import gotemplate
        try:
            gotemplate.render_list(args.format, contexts, IMAGE_HEADERS, sys.stdout)
        except ValueError as exc:
            sys.stderr.write("berth: %s\n" % exc)
            return 1
        return 0
    if args.quiet:
        seen = []
        for r in rows:
            if r[2] not in seen:
                seen.append(r[2])
        sys.stdout.write("".join(i + "\n" for i in seen))
        return 0
    fmt.table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows)
    return 0


def parser_tag(p):
    """Flags of `berth tag`."""
    p.add_argument("source")
    p.add_argument("target")


def cmd_tag(client, args):
    """`berth tag SOURCE TARGET[:TAG]`."""
    repo, tag = split_ref(args.target)
    try:
        client.send("POST", "/images/%s/tag" % args.source, {"repo": repo, "tag": tag or "latest"}).close()
    except APIError as exc:
        return _err(exc)
    return 0


def parser_rmi(p):
    """Flags of `berth rmi`."""
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--no-prune", action="store_true")
    p.add_argument("images", nargs="+", metavar="IMAGE")


def cmd_rmi(client, args):
    """`berth rmi`: prints Untagged:/Deleted: lines."""
    status = 0
    for name in args.images:
        try:
            items = client.call("DELETE", "/images/%s" % name,
                                {"force": args.force, "noprune": args.no_prune})
        except APIError as exc:
            status = _err(exc)
            continue
        for item in items or []:
            for key in ("Untagged", "Deleted"):
                if item.get(key):
                    print("%s: %s" % (key, item[key]))
    return status


def parser_history(p):
    """Flags of `berth history`."""
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("image")


def cmd_history(client, args):
    """`berth history`: IMAGE CREATED CREATED BY SIZE COMMENT."""
    rows = []
    for h in client.get("/images/%s/history" % args.image) or []:
        ident = h.get("Id") or "<missing>"
        if ident != "<missing>" and not args.no_trunc:
            ident = fmt.short_id(ident)
        created_by = (h.get("CreatedBy") or "").replace("\t", " ")
        rows.append([ident, fmt.since(h.get("Created") or 0),
                     created_by if args.no_trunc else fmt.ellipsis(created_by, 45),
                     fmt.human_size(h.get("Size") or 0), h.get("Comment") or ""])
    if args.quiet:
        sys.stdout.write("".join(r[0] + "\n" for r in rows))
        return 0
    fmt.table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], rows)
    return 0


def parser_load(p):
    """Flags of `berth load`."""
    p.add_argument("-i", "--input", help="tar archive to read (default stdin)")
    p.add_argument("-q", "--quiet", action="store_true")


def cmd_load(client, args):
    """`berth load -i FILE`: a docker-save or OCI archive."""
    import os  # here, not at the top: `berth images` and `pull` do without it (~5 ms on 3.6)
    if not args.input and sys.stdin.isatty():
        sys.stderr.write("berth: requested load from stdin, but stdin is empty: use -i FILE\n")
        return 1
    try:
        with (open(args.input, "rb") if args.input else os.fdopen(os.dup(0), "rb")) as f:
            resp = client.send("POST", "/images/load", {"quiet": args.quiet}, body=f,
                               headers={"Content-Type": "application/x-tar"})
        progress = fmt.Progress(sys.stdout)
        for msg in resp.json_stream():
            progress.show(msg)
    except (APIError, fmt.StreamError, OSError) as exc:
        return _err(exc)
    return 0


def parser_save(p):
    """Flags of `berth save`."""
    p.add_argument("-o", "--output", help="write to this file (default stdout)")
    p.add_argument("images", nargs="+", metavar="IMAGE")


def cmd_save(client, args):
    """`berth save -o FILE IMAGE...`: written to a temp file, renamed when complete."""
    if not args.output and sys.stdout.isatty():
        sys.stderr.write("berth: cowardly refusing to save to a terminal. Use the -o flag or redirect\n")
        return 1
    try:
        resp = client.send("GET", "/images/get", [("names", n) for n in args.images])
    except APIError as exc:
        return _err(exc)
    if not args.output:
        out = sys.stdout.buffer
        for data in resp.chunks():
            out.write(data)
        out.flush()
        return 0
    import os
    tmp = "%s.tmp-%d" % (args.output, os.getpid())
    try:
        with open(tmp, "wb") as f:
            for data in resp.chunks():
                f.write(data)
        os.rename(tmp, args.output)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        return _err(exc)
    return 0


def parser_import(p):
    """Flags of `berth import`."""
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-m", "--message")
    p.add_argument("file", help="rootfs tar, or - for stdin")
    p.add_argument("reference", nargs="?")


def cmd_import(client, args):
    """`berth import FILE|- [REPO[:TAG]]`: prints the new image id."""
    import os
    repo, tag = split_ref(args.reference) if args.reference else (None, None)
    query = [("fromSrc", "-"), ("repo", repo), ("tag", tag), ("message", args.message)]
    query += [("changes", c) for c in args.change]
    try:
        with (os.fdopen(os.dup(0), "rb") if args.file == "-" else open(args.file, "rb")) as f:
            resp = client.send("POST", "/images/create", query, body=f)
        for msg in resp.json_stream():
            if msg.get("error"):
                raise fmt.StreamError(msg["error"])
            if msg.get("status"):
                print(msg["status"])
    except (APIError, fmt.StreamError, OSError) as exc:
        return _err(exc)
    return 0


def parser_commit(p):
    """Flags of `berth commit`."""
    p.add_argument("-a", "--author")
    p.add_argument("-m", "--message")
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-p", "--pause", action="store_true", default=True)
    p.add_argument("container")
    p.add_argument("reference", nargs="?")


def cmd_commit(client, args):
    """`berth commit CONTAINER [REPO[:TAG]]`: prints the new image id."""
    repo, tag = split_ref(args.reference) if args.reference else (None, None)
    query = [("container", args.container), ("repo", repo), ("tag", tag), ("comment", args.message),
             ("author", args.author), ("pause", "1" if args.pause else "0")]
    query += [("changes", c) for c in args.change]
    try:
        print(client.post("/commit", query, body={})["Id"])
    except APIError as exc:
        return _err(exc)
    return 0


def parser_inspect(p):
    """Flags of `berth image inspect`."""
    from runtime.cli import system
    system.parser_inspect(p)


def cmd_inspect(client, args):
    """`berth inspect --type image`."""
    from runtime.cli import system
    args.type = "image"
    return system.cmd_inspect(client, args)
