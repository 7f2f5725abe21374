"""The builder: runs a parsed Dockerfile stage by stage, one image per step as Docker's classic
builder does (each step's image is the next one's parent), with the step cache.

A filesystem step (RUN, COPY, ADD) adds one layer: RUN's is the diff of a container of the
engine (its overlay upper dir, whiteouts for deletions), COPY/ADD's is written from the
sources (runtime/build/copy.py). Every other instruction only changes the config and adds a
history entry with `empty_layer`. Progress goes to `progress(dict)` as Docker's JSON messages.
"""

import json

from runtime.build import copy as copy_mod
from runtime.build import meta, words
from runtime.build.cache import StepCache
from runtime.build.cachefrom import CacheSources
from runtime.build.dockerfile import Dockerfile, Instruction, parse_line  # noqa: F401
from runtime.build.rootview import RootView
from runtime.build.runstep import BuildError, RunStep  # noqa: F401 (BuildError: the API's)
from runtime.errors import BerthError, InvalidParameter, NotFound
from runtime.goarch import goarch
from runtime.store import newlayer, reference
from runtime.timefmt import now
from runtime.store.manifests import OCI_LAYER_TAR
from runtime import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional  # noqa: F401

PREDEFINED_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
                   "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")
META_ONLY = ("ENV", "LABEL", "MAINTAINER", "CMD", "ENTRYPOINT", "SHELL", "EXPOSE", "VOLUME",
             "USER", "WORKDIR", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD")


class Options(object):
    """POST /build's parameters, Docker's names."""

    def __init__(self, **kw):
        # type: (Any) -> None
        self.dockerfile = kw.get("dockerfile") or "Dockerfile"
        self.tags = list(kw.get("tags") or [])
        self.buildargs = dict(kw.get("buildargs") or {})
        self.labels = dict(kw.get("labels") or {})
        self.target = kw.get("target") or ""
        self.nocache = bool(kw.get("nocache"))
        self.pull = bool(kw.get("pull"))
        self.rm = kw.get("rm", True)
        self.forcerm = bool(kw.get("forcerm"))
        self.quiet = bool(kw.get("quiet"))
        self.cachefrom = list(kw.get("cachefrom") or [])
        self.networkmode = kw.get("networkmode") or ""
        self.platform = kw.get("platform") or ""
        self.extrahosts = list(kw.get("extrahosts") or [])
        self.host_config = dict(kw.get("host_config") or {})  # ShmSize, Memory, CpuShares, ...
        self.auth = kw.get("auth") or {}


class Stage(object):
    """One FROM ... section as it is being built."""

    def __init__(self, index, name, escape):
        # type: (int, str, str) -> None
        self.index, self.name, self.escape = index, name, escape
        self.image_id = ""
        self.image = {}  # type: Dict[str, Any]  # the full image config
        self.layers = []  # type: List[tuple]  # (blob digest, media type, size)
        self.args = {}  # type: Dict[str, str]
        self.cmd_set = False
        self.author = ""

    @property
    def cfg(self):
        # type: () -> dict
        return self.image.setdefault("config", {})


def split_stages(df):
    # type: (Dockerfile) -> tuple
    """(meta ARG instructions before the first FROM, [[FROM, ...], ...])."""
    metas, stages = [], []  # type: (List[Instruction], List[List[Instruction]])
    for inst in df.instructions:
        if inst.cmd == "FROM":
            stages.append([inst])
        elif not stages:
            if inst.cmd != "ARG":
                raise inst.error("only ARG can come before the first FROM")
            metas.append(inst)
        else:
            stages[-1].append(inst)
    if not stages:
        raise InvalidParameter("the Dockerfile has no FROM instruction")
    return metas, stages


def _from_parts(inst, env, escape):
    # type: (Instruction, dict, str) -> tuple
    ws = words.split(inst.args, escape)
    if len(ws) == 3 and ws[1].upper() == "AS":
        return words.expand(ws[0], env, escape), ws[2].lower()
    if len(ws) != 1:
        raise inst.error("use FROM IMAGE [AS NAME]")
    return words.expand(ws[0], env, escape), ""


class Builder(object):
    """One build of `context` with `options` on `service`'s parts (runtime/build/service.py:
    store, containers (the container service), index (the container index), registry)."""

    def __init__(self, service, context, df, options, progress, cache_root):
        # type: (Any, Any, Dockerfile, Options, Any, str) -> None
        self.service = service
        self.store = service.store
        self.context = context
        self.df = df
        self.opts = options
        self._progress = progress
        self.cache = StepCache(cache_root)
        self.sources = None  # type: Optional[CacheSources]
        self.stages = []  # type: List[Stage]
        self.used_args = set()  # type: set
        self.step, self.total = 0, 0

    # ---------------------------------------------------------------- output

    def say(self, text):
        # type: (str) -> None
        if not self.opts.quiet:
            self._progress({"stream": text})

    # ---------------------------------------------------------------- the build

    def build(self):
        # type: () -> str
        """Run every stage up to the target; returns the final image id (tagged)."""
        for note in self.df.notes:
            self.say("[Note] %s\n" % note)
        metas, stages = split_stages(self.df)
        meta_args = {}
        for inst in metas:
            for name, default in self._arg_decls(inst, {}):
                self.used_args.add(name)
                meta_args[name] = self.opts.buildargs.get(name, default)
        names = []
        for s in stages:
            names.append(_from_parts(s[0], {k: v for k, v in meta_args.items() if v is not None},
                                     self.df.escape)[1])
        if self.opts.target:
            if self.opts.target.lower() not in names:
                raise InvalidParameter("failed to reach build target %s in Dockerfile: the "
                                       "stages are %s" % (self.opts.target, ", ".join(
                                           n for n in names if n) or "unnamed"))
            stages = stages[:names.index(self.opts.target.lower()) + 1]
        if self.opts.labels:
            line = "LABEL " + " ".join('%s=%s' % (json.dumps(k), json.dumps(v))
                                       for k, v in sorted(self.opts.labels.items()))
            stages[-1] = stages[-1] + [parse_line(line, stages[-1][-1].line)]
        self.total = len(metas) + sum(len(s) for s in stages)
        if self.opts.cachefrom:
            self.sources = CacheSources(self.store, self.opts.cachefrom)
        for inst in metas:
            self._begin(inst)
        for i, insts in enumerate(stages):
            stage = Stage(i, names[i], self.df.escape)
            self._from(stage, insts[0], meta_args)
            self.stages.append(stage)
            for inst in insts[1:]:
                self._begin(inst)
                self._dispatch(stage, inst, meta_args)
        final = self.stages[-1]
        if not final.image_id:
            raise InvalidParameter("the final stage is FROM scratch with nothing in it: add an "
                                   "instruction that makes a layer or a config")
        unused = sorted(k for k in self.opts.buildargs
                        if k not in self.used_args and k not in PREDEFINED_ARGS)
        if unused:
            self.say("[Warning] One or more build-args [%s] were not consumed\n" % " ".join(unused))
        self._progress({"aux": {"ID": final.image_id}})
        if self.opts.quiet:
            self._progress({"stream": final.image_id + "\n"})
        self.say("Successfully built %s\n" % final.image_id[7:19])
        for t in self.opts.tags:
            name = reference.normalize(t)
            self.store.tag(final.image_id, name)
            self.say("Successfully tagged %s\n" % reference.familiar(name))
        return final.image_id

    def _begin(self, inst):
        # type: (Instruction) -> None
        self.step += 1
        self.say("Step %d/%d : %s\n" % (self.step, self.total, inst.original))

    def _arg_decls(self, inst, env):
        # type: (Instruction, dict) -> list
        out = []
        for w in words.split(inst.args, self.df.escape):
            name, eq, default = w.partition("=")
            if not name:
                raise inst.error("ARG needs a name: ARG NAME[=default]")
            out.append((name, words.expand(default, env, self.df.escape) if eq else None))
        return out

    # ---------------------------------------------------------------- FROM

    def _from(self, stage, inst, meta_args):
        # type: (Stage, Instruction, dict) -> None
        self._begin(inst)
        env = {k: v for k, v in meta_args.items() if v is not None}
        ref, _ = _from_parts(inst, env, self.df.escape)
        platform = words.expand(inst.flags.get("platform", ""), env, self.df.escape) \
            or self.opts.platform
        self._check_platform(inst, platform)
        if not ref:
            raise inst.error("FROM needs an image name (an ARG it uses may be empty)")
        earlier = self._stage_by_name(ref)
        if ref.lower() == "scratch":
            stage.image = {"architecture": goarch(), "os": "linux", "config": {},
                           "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
            self.say(" ---> scratch\n")
            return
        if earlier is not None:
            image_id = earlier.image_id
            if not image_id:
                raise inst.error("stage %r has no image to build on" % ref)
        else:
            image_id = self._base_image(inst, ref, platform)
        self._load(stage, image_id)
        self.say(" ---> %s\n" % image_id[7:19])
        triggers = stage.cfg.get("OnBuild") or []
        if triggers:
            stage.cfg["OnBuild"] = None
            self.say("# Executing %d build trigger%s\n" % (len(triggers),
                                                          "s" if len(triggers) > 1 else ""))
            for text in triggers:
                self._dispatch(stage, parse_line(text, inst.line, self.df.escape), meta_args)

    def _check_platform(self, inst, platform):
        # type: (Instruction, str) -> None
        if not platform:
            return
        parts = platform.lower().split("/")
        arch = goarch()
        if parts[0] != "linux" or (len(parts) > 1 and parts[1] != arch):
            raise inst.error("platform %s is not supported here: this builder runs linux/%s "
                             "only" % (platform, arch))

    def _stage_by_name(self, ref):
        # type: (str) -> Optional[Stage]
        for s in self.stages:
            if s.name and s.name == ref.lower():
                return s
        if ref.isdigit() and int(ref) < len(self.stages):
            return self.stages[int(ref)]
        return None

    def _base_image(self, inst, ref, platform):
        # type: (Instruction, str, str) -> str
        try:
            image_id = self.store.resolve(ref)
            if not self.opts.pull:
                return image_id
        except NotFound:
            pass
        name = reference.normalize(ref)
        auth = self._auth_for(name)
        self._pull_progress("Pulling from %s" % reference.familiar(name))
        try:
            return self.service.registry.pull(name, auth=auth, platform=platform or None,
                                          progress=self._pull_progress)
        except BerthError as exc:
            raise inst.error("cannot get the base image %s: %s" % (ref, exc)) from None

    def _pull_progress(self, msg):
        if isinstance(msg, str):
            msg = {"status": msg}
        if not self.opts.quiet:
            self._progress(msg)

    def _auth_for(self, name):
        # type: (str) -> dict
        host = name.split("/", 1)[0]
        for key, value in (self.opts.auth or {}).items():
            k = key.split("://", 1)[-1].split("/", 1)[0]
            if k == host or (host == "docker.io" and "docker.io" in k):
                return value
        return {}

    def _load(self, stage, image_id):
        # type: (Stage, str) -> None
        stage.image_id = image_id
        stage.image = self.store.image_config(image_id)
        stage.image.setdefault("config", {})
        stage.layers = [(lay["digest"], lay["mediaType"], lay["size"])
                        for lay in self.store.record(image_id)["layers"]]

    # ---------------------------------------------------------------- steps

    def _env(self, stage):
        # type: (Stage) -> dict
        """Variables for expansion: the stage's ARGs, then the config's Env over them."""
        env = {k: v for k, v in stage.args.items() if v is not None}
        for e in stage.cfg.get("Env") or []:
            k, _, v = e.partition("=")
            env[k] = v
        return env

    def _arg_env(self, stage):
        # type: (Stage) -> list
        """The ARG values a RUN sees (and the cache key holds), as K=V, sorted."""
        env_keys = {e.partition("=")[0] for e in stage.cfg.get("Env") or []}
        out = ["%s=%s" % (k, v) for k, v in sorted(stage.args.items()) if v is not None]
        for k in PREDEFINED_ARGS:
            if k in self.opts.buildargs and k not in stage.args:
                out.append("%s=%s" % (k, self.opts.buildargs[k]))
        return [e for e in out if e.partition("=")[0] not in env_keys]

    def _dispatch(self, stage, inst, meta_args):
        # type: (Stage, Instruction, dict) -> None
        if inst.cmd == "FROM":
            raise inst.error("FROM cannot be an ONBUILD trigger")
        if inst.cmd == "ARG":
            for name, default in self._arg_decls(inst, self._env(stage)):
                self.used_args.add(name)
                if name in self.opts.buildargs:
                    stage.args[name] = self.opts.buildargs[name]
                elif default is None and meta_args.get(name) is not None:
                    stage.args[name] = meta_args[name]
                else:
                    stage.args[name] = default
            self._meta_step(stage, "ARG " + inst.args, None)
            return
        if inst.cmd in META_ONLY:
            cfg = json.loads(json.dumps(stage.cfg))
            env = self._env(stage)
            shadow = Stage(stage.index, stage.name, stage.escape)
            shadow.cmd_set, shadow.author = stage.cmd_set, stage.author
            text = meta.apply(inst, cfg, env, shadow)
            stage.cmd_set = shadow.cmd_set
            self._meta_step(stage, text, cfg, author=shadow.author)
            return
        if inst.cmd == "RUN":
            self._run(stage, inst)
            return
        if inst.cmd in ("COPY", "ADD"):
            self._copy(stage, inst)
            return
        raise inst.error("not supported")

    def _cached(self, stage, text, checksum="", created_by=None, config=None):
        # type: (Stage, str, str, Optional[str], Optional[dict]) -> tuple
        """(step key, the cached image id or ""); with cachefrom, a local hit must be one of
        those images' (ancestors), else a source's history may continue with this step."""
        key = StepCache.key(stage.image_id, text, checksum)
        if self.opts.nocache:
            return key, ""
        allowed = self.sources.allowed if self.sources is not None else None
        hit = self.cache.get(key, stage.image_id, self.store, allowed)
        if not hit and self.sources is not None:
            hit = self.sources.match(stage.image, stage.image_id, created_by or text,
                                     stage.cfg if config is None else config)
            if hit:
                self.cache.put(key, hit)
        return key, hit

    def _use(self, stage, key, image_id, cached):
        # type: (Stage, str, str, bool) -> None
        if cached:
            self.say(" ---> Using cache\n")
        else:
            self.cache.put(key, image_id)
        self._load(stage, image_id)
        self.say(" ---> %s\n" % image_id[7:19])

    def _meta_step(self, stage, text, cfg, author=""):
        # type: (Stage, str, Optional[dict], str) -> None
        """A step without a layer: a new config (cfg, or the same one for ARG)."""
        created_by = "/bin/sh -c #(nop) " + text
        key, hit = self._cached(stage, created_by, config=cfg)
        if hit:
            self._use(stage, key, hit, True)
            return
        image = json.loads(json.dumps(stage.image))
        if cfg is not None:
            image["config"] = cfg
        if author:
            image["author"] = author
        image_id = self._commit(stage, image, created_by, None)
        self._use(stage, key, image_id, False)

    def _commit(self, stage, image, created_by, layer):
        # type: (Stage, dict, str, Optional[tuple]) -> str
        """Record the next image: image (config) plus a history entry and maybe a layer
        (digest, size) already stored as a blob."""
        created = now()
        image["created"] = created
        entry = {"created": created, "created_by": created_by}
        if layer is None:
            entry["empty_layer"] = True
        image["history"] = list(image.get("history") or []) + [entry]
        layers = list(stage.layers)
        rootfs = dict(image.get("rootfs") or {"type": "layers"})
        rootfs["diff_ids"] = list(rootfs.get("diff_ids") or [])
        if layer is not None:
            layers.append((layer[0], OCI_LAYER_TAR, layer[1]))
            rootfs["diff_ids"].append(layer[0])
        image["rootfs"] = rootfs
        image.pop("container", None)
        image.pop("container_config", None)
        data = json.dumps(image, separators=(",", ":")).encode()
        return self.store.create_image(data, layers, (), parent=stage.image_id)

    def _layer_step(self, stage, image, created_by, write):
        # type: (Stage, dict, str, Any) -> str
        digest, size = newlayer.store_tar(self.store, write)
        return self._commit(stage, image, created_by, (digest, size))

    # ---------------------------------------------------------------- COPY / ADD

    def _copy(self, stage, inst):
        # type: (Stage, Instruction) -> None
        env = self._env(stage)
        esc = self.df.escape
        args = inst.json if inst.json is not None else words.split(inst.args, esc)
        args = [words.expand(a, env, esc) if inst.json is None else a for a in args]
        if len(args) < 2:
            raise inst.error("%s requires at least two arguments: SOURCE... DEST" % inst.cmd)
        srcs, dest = args[:-1], args[-1]
        if inst.json is not None:
            dest = words.expand(dest, env, esc)
        fs = self.context
        if "from" in inst.flags:
            if inst.cmd == "ADD":
                raise inst.error("ADD does not take --from: use COPY --from")
            fs = self._from_fs(inst, words.expand(inst.flags["from"], env, esc))
        image = RootView(self.store.layer_dirs(stage.image_id)) if stage.image_id else \
            RootView([])
        try:
            owner = copy_mod.owner_ids(image, words.expand(inst.flags.get("chown", ""), env, esc))
        except InvalidParameter as exc:
            raise inst.error(str(exc)) from None
        chmod = None
        if inst.flags.get("chmod"):
            try:
                chmod = int(inst.flags["chmod"], 8)
            except ValueError:
                raise inst.error("--chmod=%s is not an octal mode" % inst.flags["chmod"]) from None
        try:
            p = copy_mod.plan(fs, srcs, dest, stage.cfg.get("WorkingDir") or "/", image, owner,
                              chmod, add=inst.cmd == "ADD", cmd=inst.cmd)
        except InvalidParameter as exc:
            raise inst.error(str(exc)) from None
        checksum = p.checksum()
        created_by = "/bin/sh -c #(nop) %s %s:%s in %s " % (
            inst.cmd, p.what, checksum, dest)
        flags = " ".join("--%s=%s" % kv for kv in inst.flag_list)
        key, hit = self._cached(stage, created_by + flags, created_by=created_by)
        if hit:
            self._use(stage, key, hit, True)
            return
        image_cfg = json.loads(json.dumps(stage.image))
        image_id = self._layer_step(stage, image_cfg, created_by, p.write_tar)
        self._use(stage, key, image_id, False)

    def _from_fs(self, inst, name):
        # type: (Instruction, str) -> RootView
        s = self._stage_by_name(name)
        if s is not None:
            return RootView(self.store.layer_dirs(s.image_id)) if s.image_id else RootView([])
        try:
            image_id = self.store.resolve(name)
        except NotFound:
            image_id = self._base_image(inst, name, "")
        return RootView(self.store.layer_dirs(image_id))

    # ---------------------------------------------------------------- RUN

    def _run(self, stage, inst):
        # type: (Stage, Instruction) -> None
        if inst.flags:
            raise inst.error("RUN --%s needs BuildKit; berth's builder runs the classic "
                             "Dockerfile syntax" % sorted(inst.flags)[0])
        argv = meta.shell_form(inst, stage.cfg)
        arg_env = self._arg_env(stage)
        created_by = " ".join(argv) if inst.json is None else json.dumps(argv)
        if arg_env:
            created_by = "|%d %s %s" % (len(arg_env), " ".join(arg_env), created_by)
        key, hit = self._cached(stage, created_by)
        if hit:
            self._use(stage, key, hit, True)
            return
        if not stage.image_id:
            raise inst.error("RUN needs a base with a shell: FROM scratch has no files yet")
        image_cfg = json.loads(json.dumps(stage.image))
        image_id = RunStep(self, stage, inst, argv, arg_env).run(image_cfg, created_by)
        self._use(stage, key, image_id, False)

