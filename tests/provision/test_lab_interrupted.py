"""Interrupted provisioning: `provision host` on nested lab hosts is SIGKILLed at each step in
turn (the facts, then every step of the plan), or has its SSH connection cut mid-step by
dropping the host's port 22 traffic inside the host's own network namespace, and is rerun.
After every interruption no managed file is half-written (each is absent, as it was before
provisioning, or as provisioning leaves it), daemon.json keeps the keys the host's owner wrote
in it, and no backup or temp file is torn. The final rerun converges on every host: exit 0,
the engine running and proven, a further rerun changes nothing, the data root checker clean.
A second round changes the registry mirror and the engine build (a restart for two reasons)
and interrupts again during the steps that carry them.

Size and seed: BERTH_INTERRUPT_HOSTS (default 2; the issue's campaign is 20),
BERTH_INTERRUPT_SEED (default 18), BERTH_INTERRUPT_CUTS (the share of interruptions that are SSH
cuts rather than kills, default 0.2). A failure names the seed, host and interruption."""

import base64
import concurrent.futures
import json
import os
import pathlib
import random
import re
import signal
import subprocess
import sys
import time

import pytest

from provision import bundle
from tests.provision.installutil import committed_tree
from tests.provision.labutil import ROOT, build_apt_repo, known_hosts, provision_json, ssh_args

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(1800)]

HOSTS = int(os.environ.get("BERTH_INTERRUPT_HOSTS", "2"))
SEED = int(os.environ.get("BERTH_INTERRUPT_SEED", "18"))
CUT_SHARE = float(os.environ.get("BERTH_INTERRUPT_CUTS", "0.2"))

# (interruption point, the host-log line that says the point is about to run, seconds of
# delay after that line within which the interruption lands: about the step's usual length)
POINTS = [
    ("facts", "# provision host", 1.3),
    ("kernel modules", "== check ", 0.1),
    ("sysctls", "== step kernel modules:", 0.15),
    ("package repos", "== step sysctls:", 0.6),
    ("daemon.json", "== step packages:", 0.1),
    ("docker group", "== step daemon.json:", 0.1),
    ("engine bundle", "== step engine packages:", 2.4),
    ("berthd unit", "== step engine bundle:", 1.0),
    ("berthd service", "== step berthd unit:", 2.2),
    ("engine verify", "== step berthd service:", 2.4),
]
# the points that do work again in the second round (new mirror, new engine build)
ROUND2 = ["daemon.json", "engine bundle", "berthd service", "engine verify"]
USER_CONFIG = {"log-driver": "local", "log-opts": {"max-size": "10m"}, "debug": True}
MANAGED = [
    "/etc/modules-load.d/berth.conf",
    "/etc/sysctl.d/99-berth.conf",
    "/etc/apt/sources.list",
    "/etc/berth/daemon.json",
    "/etc/systemd/system/berthd.service",
    "/usr/local/bin/berth",
    "/usr/local/bin/berthd",
    "/usr/local/lib/berth/provision-state.json",
]
MIRROR_A = "https://mirror-a.example.com"
MIRROR_B = "https://mirror-b.example.com"
CUT_RULES = [("INPUT", "--dport"), ("OUTPUT", "--sport")]


def snapshot(h):
    """{path: content or None} of the managed files, their backups and any temp file beside
    them (read inside the host, not over SSH: the host's network may be cut)."""
    dirs = sorted({os.path.dirname(p) for p in MANAGED})
    out = h.exec(
        "for d in " + " ".join(dirs) + "; do for f in \"$d\"/* \"$d\"/.[!.]*; do "
        '[ -f "$f" ] || continue; printf "@@%s\\n" "$f"; base64 -w0 "$f"; echo; done; done',
        timeout=60,
    ).stdout
    files = {}
    for chunk in out.split("@@")[1:]:
        path, _, data = chunk.partition("\n")
        files[path] = base64.b64decode(data.strip())
    return files


def is_temp(path):
    name = os.path.basename(path)
    return ".berth-" in name and not name.endswith(".berth-orig")


def settled_snapshot(h, seconds=15.0):
    """snapshot() once the remote command a kill left in flight has ended: it runs to its end
    on the host (the controller's death does not stop it), and meanwhile its temp file is there.
    A temp file still there after ``seconds`` is a real leftover (check_snapshot says so)."""
    t0 = time.monotonic()
    snap = snapshot(h)
    waited = False
    while any(is_temp(p) for p in snap) and time.monotonic() < t0 + seconds:
        waited = True
        time.sleep(0.25)
        snap = snapshot(h)
    if waited:
        print(f"{h.name}: the command in flight ended {time.monotonic() - t0:.1f} s after the kill")
    return snap


def check_snapshot(where, snap, valid):
    """Every managed file, backup and temp file in ``snap`` is whole: its content is one of the
    ``valid`` ones for that path; daemon.json parses and keeps the owner's keys."""
    for path, data in snap.items():
        if is_temp(path):
            raise AssertionError(f"{where}: a temp file was left: {path}")
        base = path
        for suffix in (".berth-orig", ".bak"):
            if path.endswith(suffix):
                base = path[: -len(suffix)]
        if base not in MANAGED:
            continue
        ok = valid.get(path) if path in valid else valid.get(base, set())
        assert data in ok, f"{where}: {path} is torn or unexpected ({len(data)} bytes): {data[:200]!r}"
    cfg = snap.get("/etc/berth/daemon.json")
    assert cfg is not None, f"{where}: daemon.json lost"
    parsed = json.loads(cfg)
    for k, v in USER_CONFIG.items():
        assert parsed.get(k) == v, f"{where}: daemon.json lost the owner's {k}: {parsed}"


def cut(h, on):
    """Drop (on) or restore the host's SSH traffic, in the host's own network namespace."""
    op = "-I" if on else "-D"
    for chain, port in CUT_RULES:
        h.exec(["iptables", "-w", op, chain, "-p", "tcp", port, "22", "-j", "DROP"], check=on)


class Interrupter:
    """Runs `provision host` on one host and interrupts it at a point (kill or SSH cut)."""

    def __init__(self, h, args, logdir, rng):
        self.h, self.args, self.logdir, self.rng = h, args, pathlib.Path(logdir), rng
        self.errors = []  # the one-line errors of the runs cut off

    def log_text(self):
        try:
            return next(self.logdir.glob("*.log")).read_text()
        except (StopIteration, OSError):
            return ""

    def run(self, point, how):
        """Start, wait for the point's trigger line, interrupt after a seeded delay; returns
        (what happened, the step the log shows last)."""
        _, trigger, window = next(p for p in POINTS if p[0] == point)
        for f in self.logdir.glob("*.log"):
            f.unlink()
        p = subprocess.Popen(
            [sys.executable, "-c", "from provision.cli import main; main()", "host", *self.args,
             "--log-dir", str(self.logdir)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=dict(os.environ, COLUMNS="200"),
        )  # fmt: skip
        deadline = time.monotonic() + 240
        while trigger not in self.log_text() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(self.rng.uniform(0, window))
        if p.poll() is not None:
            return f"finished first (rc {p.returncode})", self.last_step()
        if how == "kill":
            p.send_signal(signal.SIGKILL)
            p.wait()
            return "killed", self.last_step()
        cut(self.h, True)
        try:
            try:
                out, err = p.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise AssertionError(f"{self.h.name}: provision hung 90 s on a cut SSH connection") from None
        finally:
            cut(self.h, False)
        if p.returncode == 0:  # its last command had answered before the cut
            return "finished first (rc 0)", self.last_step()
        result = [ln for ln in self.log_text().splitlines() if ln.startswith("# result: failed: ")]
        assert result, f"{self.h.name}: a cut run ended {p.returncode} without its error line: {err[-500:]}"
        self.errors.append(result[-1][len("# result: failed: ") :])
        return "cut", self.last_step()

    def last_step(self):
        head = "== step "
        steps = [ln.split(":")[0][len(head) :] for ln in self.log_text().splitlines() if ln.startswith(head)]
        return steps[-1] if steps else "(facts)"


@pytest.fixture(scope="module")
def campaign(plab, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("interrupted")
    hosts = plab.up(HOSTS, nested=True)
    url = plab.serve_dir(str(build_apt_repo(tmp / "mirror")))
    kh = known_hosts(hosts, tmp / "known_hosts")
    tree = committed_tree(tmp / "committed") / "runtime"
    bundles = []
    for version in (None, "0.0.9+interrupted"):
        b = bundle.build(version=version, src=tree)
        (tmp / b.filename).write_bytes(b.data)
        bundles.append(str(tmp / b.filename))
    for h in hosts:
        h.exec("mkdir -p /etc/berth && cat > /etc/berth/daemon.json", input=json.dumps(USER_CONFIG))
    yield hosts, kh, url, bundles, tmp
    plab.stop(hosts)


def connect_args(hosts, kh):
    """The lab's ssh options with a connect timeout for a loaded machine (20 hosts at once)."""
    return [*ssh_args(hosts, kh)[:-2], "--timeout", "30"]


def args_for(h, kh, url, engine_bundle, mirror):
    return ["--bundle", engine_bundle, f"root@{h.ip}", "--mirror", url, "--no-gpgcheck",
            "--registry-mirror", mirror, *connect_args([h], kh)]  # fmt: skip


def walk(h, points, args, logdir, rng, where):
    """Interrupt `provision host` on ``h`` at each of ``points`` in turn; returns the log of
    (point, how, outcome, last step seen) and the snapshots taken after each interruption."""
    runner = Interrupter(h, args, logdir, rng)
    log, snaps = [], []
    for i, point in enumerate(points):
        how = "cut" if rng.random() < CUT_SHARE else "kill"
        outcome, last = runner.run(point, how)
        log.append((point, how, outcome, last))
        snaps.append((f"{where} #{i} {how} at {point} (last step logged: {last})", settled_snapshot(h)))
    return log, snaps, runner.errors


def converge(hosts, kh, url, engine_bundle, mirror):
    """Rerun on every host at once: exit 0, then a second rerun changes nothing."""
    args = ["--bundle", engine_bundle, *(f"root@{h.ip}" for h in hosts), "--mirror", url, "--no-gpgcheck",
            "--registry-mirror", mirror, *connect_args(hosts, kh)]  # fmt: skip
    rc, reps = provision_json("host", *args, timeout=900)
    assert rc == 0, json.dumps({t: (r["status"], r["error"]) for t, r in reps.items()}, indent=1)
    rc, reps = provision_json("host", *args, timeout=900)
    changed = {t: [s["name"] for s in r["steps"] if s["status"] != "ok"] for t, r in reps.items()}
    assert rc == 0 and not any(changed.values()), changed


def check_engine(h, mirror):
    """The engine runs from the installed build with the written config, and nothing in its
    data root needs a repair."""
    assert h.exec("systemctl is-active berthd").stdout.strip() == "active"
    info = json.loads(h.exec("berth info -f json").stdout)
    assert [m.rstrip("/") for m in info["RegistryConfig"]["Mirrors"]] == [mirror]
    assert h.exec("berth run --rm berth-probe:latest echo ok", timeout=120).stdout == "ok\n"
    report = json.loads(h.exec("berth system check --format json").stdout)
    assert report["Problems"] == 0, report
    # uploads a kill cut short stay in /tmp (the login user's private files): counted, reported
    return len(h.exec("ls -a /tmp | grep '^\\.berth-' || true").stdout.split())


def run_round(hosts, kh, url, engine_bundle, mirror, points, round_name, tmp, valid_for):
    rng_base = random.Random(f"{SEED}-{round_name}")
    seeds = [rng_base.random() for _ in hosts]
    with concurrent.futures.ThreadPoolExecutor(len(hosts)) as pool:
        futs = {}
        for h, s in zip(hosts, seeds):
            rng = random.Random(s)
            order = list(points)
            logdir = tmp / f"logs-{round_name}-{h.name}"
            logdir.mkdir()
            where = f"seed {SEED} {round_name} {h.name}"
            futs[h.name] = pool.submit(walk, h, order, args_for(h, kh, url, engine_bundle, mirror), logdir,
                                       rng, where)  # fmt: skip
        results = {n: f.result() for n, f in futs.items()}
    converge(hosts, kh, url, engine_bundle, mirror)
    tally = {}
    for h in hosts:
        log, snaps, _ = results[h.name]
        final = snapshot(h)
        valid = valid_for(h, final)
        for where, snap in snaps:
            check_snapshot(where, snap, valid)
        check_snapshot(f"{round_name} {h.name} converged", final, valid)
        staged = check_engine(h, mirror)
        if staged:
            tally["uploads left in /tmp"] = tally.get("uploads left in /tmp", 0) + staged
        for _point, how, outcome, _ in log:
            key = how if outcome in ("killed", "cut") else f"{how}: {outcome.split(' (')[0]}"
            tally[key] = tally.get(key, 0) + 1
    return tally, results


def test_interrupted_provisioning_converges(campaign):
    hosts, kh, url, (current, newer), tmp = campaign
    before = {h.name: snapshot(h) for h in hosts}

    def valid_round1(h, final):
        valid = {}
        for p in set(before[h.name]) | set(final):
            valid[p] = {x for x in (before[h.name].get(p), final.get(p)) if x is not None}
        return valid

    t0 = time.monotonic()
    points = [p[0] for p in POINTS]
    tally1, res1 = run_round(hosts, kh, url, current, MIRROR_A, points, "round1", tmp, valid_round1)
    after1 = {h.name: snapshot(h) for h in hosts}

    def valid_round2(h, final):
        valid = {}
        for p in set(after1[h.name]) | set(final) | set(before[h.name]):
            valid[p] = {x for x in (after1[h.name].get(p), final.get(p)) if x is not None}
        for p in MANAGED:  # a backup holds the file as one of the runs found it
            valid[p + ".bak"] = {x for s in (before, after1) for x in (s[h.name].get(p),) if x is not None}
            valid[p + ".bak"] |= valid.get(p, set())
        valid["/etc/berth/daemon.json.berth-orig"] = {before[h.name]["/etc/berth/daemon.json"]}
        return valid

    tally2, res2 = run_round(hosts, kh, url, newer, MIRROR_B, ROUND2, "round2", tmp, valid_round2)
    n = sum(len(r[0]) for r in list(res1.values()) + list(res2.values()))
    print(f"interrupted provisions: {n} on {len(hosts)} hosts (seed {SEED}), all converged in "
          f"{time.monotonic() - t0:.0f} s: round 1 {tally1}, round 2 {tally2}")
    landed, errors = {}, set()
    for log, _, errs in list(res1.values()) + list(res2.values()):
        errors |= {re.sub(r"[0-9.]+:22", "HOST:22", re.sub(r"root@[0-9.]+", "HOST", e)) for e in errs}
        for _point, _how, outcome, last in log:
            if outcome in ("killed", "cut"):
                key = f"after {last}"
                landed[key] = landed.get(key, 0) + 1
    print(f"where they landed (the last step the host log had finished): {landed}")
    print(f"the one-line errors of the cut runs: {sorted(errors)}")
