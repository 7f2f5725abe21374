"""Power-cut campaign: berthd runs in a QEMU (TCG) Debian 12 VM whose data root is a separate
virtual disk; a stream of loads (archives on the guest's disk; with BERTH_POWERCUT_PULLS=1
pulls from a registry on the machine's loopback through the VM's guestfwd) and commits (of a
container that wrote random bytes) runs over ssh, and the
VM is hard-reset (the monitor's system_reset: everything the guest had not written to its
disks is lost) at a seeded random moment. After the reboot, `berthd --check-store` (offline,
every blob re-hashed) finds nothing that needs a decision, its --repair leaves the store clean,
and every operation reported complete before the cut is intact: the image is there and a
container of it reads back the exact bytes. An operation cut short is either absent or whole.
This is what proves the fsync discipline (file, then directory, then rename), which a SIGKILL
of berthd cannot.

Size and seed: BERTH_POWERCUT_CUTS (default 1, the test suite's size; the campaign: 20 or more),
BERTH_POWERCUT_SEED (default 18). A failure names the seed and the cut."""

import json
import random
import re
import threading
import time

import pytest

from tests.powercut.conftest import CUTS, PULLS, SEED, START, UNCONFINED

# the cut lands this many seconds into the stream of operations (TCG: a pull of a few MB or a
# commit takes 3-15 s, so this spans several of them)
CUT_WINDOW = (15.0, 75.0)

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(3600)]


class Stream:
    """Operations run one after another in the guest until the VM goes away; each one the
    client saw succeed is recorded (image ref, path inside it, sha256 of that file)."""

    def __init__(self, vm, rng, pulls, counter):
        self.vm, self.rng, self.pulls, self.counter = vm, rng, pulls, counter
        self.done = []  # (op, ref, path, sha)
        self.cut_short = []  # (op, ref, path, sha or None)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            i = self.counter[0]
            self.counter[0] += 1
            kind = self.rng.random()
            if kind < 0.5 and i < len(self.pulls) and PULLS:
                ref, sha, _ = self.pulls[i]
                op = ("pull", ref, "/data/blob", sha)
                res = self.vm.ssh(f"berth pull -q {ref}", check=False, timeout=300)
            elif kind < 0.5 and i < len(self.pulls):
                _, sha, _ = self.pulls[i]
                op = ("load", f"camp/p{i}:1", "/data/blob", sha)
                res = self.vm.ssh(f"berth load -q -i /root/p{i}.tar", check=False, timeout=300)
            else:
                size = self.rng.randrange(1, 4) << 20
                name = f"c{i}"
                res = self.vm.ssh(
                    f"berth run --name {name} --network none {UNCONFINED} busybox sh -c "
                    f"'head -c {size} /dev/urandom > /blob && sha256sum /blob'",
                    check=False, timeout=300)
                m = re.match(r"([0-9a-f]{64})", res.stdout)
                op = ("commit", f"camp/c{i}:1", "/blob", m.group(1) if m else None)
                if res.returncode == 0 and m:
                    res = self.vm.ssh(f"berth commit {name} camp/c{i}:1", check=False, timeout=300)
            (self.done if res.returncode == 0 and op[3] else self.cut_short).append(op)
            if res.returncode != 0:
                return  # the cut (or a failure, which the checks below then show)


def offline_check(vm, where):
    """`berthd --check-store`, then --repair, then a clean check; returns the first summary."""
    first = vm.ssh("berthd --check-store", check=False, timeout=900)
    summary = first.stdout.strip().splitlines()[-1] if first.stdout.strip() else first.stderr
    assert " 0 need a decision" in summary, f"{where}: the checker found:\n{first.stdout}{first.stderr}"
    if first.returncode != 0:
        out = vm.ssh("berthd --check-store --repair", check=False, timeout=900)
        assert "0 need a decision" in out.stdout, f"{where}: {out.stdout}{out.stderr}"
        again = vm.ssh("berthd --check-store", check=False, timeout=900)
        assert again.returncode == 0, f"{where}: after --repair: {again.stdout}{again.stderr}"
    return summary


def read_back(vm, ref, path):
    """sha256 of ``path`` in a container of ``ref`` (None when the image is not there)."""
    if vm.ssh(f"berth image inspect {ref} >/dev/null 2>&1", check=False).returncode != 0:
        return None
    out = vm.ssh(f"berth run --rm --network none {UNCONFINED} {ref} sha256sum {path}", check=False,
                 timeout=300)
    assert out.returncode == 0, f"{ref} is listed but does not run: {out.stdout}{out.stderr}"
    return out.stdout.split()[0]


def kinds(ops):
    """{operation: how many} of a list of recorded operations."""
    return {k: sum(1 for o in ops if o[0] == k) for k in ("pull", "load", "commit")}


def test_power_cuts_lose_nothing_reported_complete(lab_vm):
    vm, pulls, boot = lab_vm
    rng = random.Random(SEED)
    counter = [0]
    survived, reboots, summaries, completed, short = 0, [], [], [], []
    for cut in range(CUTS):
        where = f"seed {SEED} cut {cut}"
        stream = Stream(vm, rng, pulls, counter)
        stream.thread.start()
        time.sleep(rng.uniform(*CUT_WINDOW))
        vm.power_cut()
        stream.stop.set()
        stream.thread.join(120)
        assert not stream.thread.is_alive(), f"{where}: the operation stream did not end"
        reboots.append(vm.wait_ssh())
        summaries.append(offline_check(vm, where))
        vm.ssh(START, timeout=960)
        completed += stream.done
        short += stream.cut_short
        for op, ref, path, sha in completed:
            assert read_back(vm, ref, path) == sha, f"{where}: {op} {ref} was reported complete: lost"
        for op, ref, path, sha in stream.cut_short:
            got = read_back(vm, ref, path)
            assert got is None or sha is None or got == sha, f"{where}: {op} {ref} cut short is half there"
        report = json.loads(vm.ssh("berth system check -f json").stdout)
        assert report["Problems"] == 0, f"{where}: {report}"
        survived += 1
    print(f"power cuts survived: {survived} (seed {SEED}); operations complete before a cut: "
          f"{len(completed)} {kinds(completed)}, cut short: "
          f"{[(o[0], o[1]) for o in short]}; first boot {boot:.0f} s, reboots "
          f"{[round(r) for r in reboots]} s; offline checks: {summaries}")

