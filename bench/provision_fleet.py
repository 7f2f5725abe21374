"""Benchmark: `provision host` vs `ansible-playbook playbooks/host.yml` (same steps, same templates)
on the same 1, 10 and 30 lab hosts: first run and immediate rerun, wall seconds and ratios.

Usage (root): python bench/provision_fleet.py [--sizes 1,10,30] [--forks 50]
Each tool starts from the same fresh state: the bench resets the hosts between tools.
"""

import argparse
import concurrent.futures
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provision.distros import detect  # noqa: E402
from provision.options import Options  # noqa: E402
from tests.lab import Lab  # noqa: E402
from tests.provision.labutil import build_apt_repo, known_hosts  # noqa: E402

# the venv's ansible-playbook (pip install -e '.[test]') when the bench runs from the venv's python
ANSIBLE_PLAYBOOK = next(
    (p for p in (os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),) if os.path.exists(p)),
    "ansible-playbook",
)

RESET = (
    "[ -e /root/.bench-sources.list ] || cp /etc/apt/sources.list /root/.bench-sources.list; "
    "rm -rf /etc/berth /etc/modules-load.d/berth.conf* /etc/sysctl.d/99-berth.conf* /etc/apt/sources.list.*; "
    "cp /root/.bench-sources.list /etc/apt/sources.list; rm -f /var/lib/apt/lists/*_dists_*; "
    "groupdel docker 2>/dev/null; sysctl -qw net.ipv4.ip_forward=0; true"
)


def reset(hosts):
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda h: h.exec(RESET), hosts))


def timed(argv, env=None):
    t0 = time.monotonic()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    return time.monotonic() - t0, p


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,10,30")
    ap.add_argument("--forks", type=int, default=50)
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    # a SIGTERM (timeout, CI) still runs the finally below: the lab hosts are removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    lab = Lab()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="berth-bench-"))
    try:
        hosts = lab.up(max(sizes))
        mirror = lab.serve_dir(str(build_apt_repo(tmp / "mirror")))
        kh = known_hosts(hosts, tmp / "known_hosts")
        opts = Options(
            mirror=mirror,
            gpgcheck=False,
            registry_mirrors=["https://registry.example.com"],
            gid=2375,
            users=["tester"],
        )
        plat = detect(
            dict(
                line.split("=", 1)
                for line in hosts[0].exec("cat /etc/os-release").stdout.replace('"', "").splitlines()
                if "=" in line
            )
        )
        evars = dict(
            opts.template_vars(plat),
            family=plat.family,
            manage_apt_sources=True,
            manage_el_repo=False,
            manage_docker_repo=False,
            daemon_json_path=opts.daemon_json_path,
            daemon_json_wanted=opts.wanted_daemon_json(),
            docker_group="docker",
            docker_gid=2375,
            docker_users=["tester"],
        )
        (tmp / "vars.json").write_text(json.dumps(evars))
        aenv = dict(
            os.environ,
            ANSIBLE_HOME=str(tmp / "ansible"),
            ANSIBLE_LOCAL_TEMP=str(tmp / "ansible/tmp"),
            ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp / "cp"),
            ANSIBLE_PIPELINING="True",
            ANSIBLE_HOST_KEY_CHECKING="True",
            ANSIBLE_FORKS=str(args.forks),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3",
            ANSIBLE_DEPRECATION_WARNINGS="False",
        )
        rows = []
        for n in sizes:
            sub = hosts[:n]
            inv = tmp / f"inventory-{n}.ini"
            inv.write_text(
                "[all]\n"
                + "".join(
                    f"{h.name} ansible_host={h.ip} ansible_user=root ansible_ssh_private_key_file={h.key} "
                    f"ansible_ssh_common_args='-o UserKnownHostsFile={kh} -o StrictHostKeyChecking=yes'\n"
                    for h in sub
                )
            )
            prov = [
                sys.executable,
                "-c",
                "from provision.cli import main; main()",
                "host",
                "--no-install",  # the same host preparation the playbook does
                *[h.ip for h in sub],
                "--mirror",
                mirror,
                "--no-gpgcheck",
                "--registry-mirror",
                "https://registry.example.com",
                "--gid",
                "2375",
                "--user",
                "tester",
                "-i",
                sub[0].key,
                "--known-hosts",
                kh,
                "--forks",
                str(args.forks),
                "--json",
            ]

            ans = [ANSIBLE_PLAYBOOK, "-i", str(inv), "-e", f"@{tmp / 'vars.json'}", "playbooks/host.yml"]
            reset(sub)
            p1, r1 = timed(prov)
            p2, r2 = timed(prov)
            changed = sum(r["changed"] for r in json.loads(r2.stdout)) if r2.returncode == 0 else "?"
            assert r1.returncode == 0 and r2.returncode == 0, r1.stdout[-3000:] + r1.stderr[-3000:]
            reset(sub)
            a1, q1 = timed(ans, aenv)
            a2, q2 = timed(ans, aenv)
            assert q1.returncode == 0 and q2.returncode == 0, q1.stdout[-3000:] + q2.stdout[-3000:]
            a_changed = sum(int(x) for x in re.findall(r"changed=(\d+)", q2.stdout))
            rows.append((n, p1, p2, changed, a1, a2, a_changed))
            print(
                f"N={n:>2}: provision first {p1:6.2f}s rerun {p2:6.2f}s (changed {changed}) | ansible "
                f"first {a1:6.2f}s rerun {a2:6.2f}s (changed {a_changed}) | ratio first {a1 / p1:5.1f}x "
                f"rerun {a2 / p2:5.1f}x",
                flush=True,
            )
        reset(hosts)
        print(
            "\n| hosts | provision first | provision rerun | ansible first | ansible rerun | ratio first | "
            "ratio rerun |\n|---|---|---|---|---|---|---|"
        )
        for n, p1, p2, _, a1, a2, _ in rows:
            print(
                f"| {n} | {p1:.2f} s | {p2:.2f} s | {a1:.2f} s | {a2:.2f} s | {a1 / p1:.1f}x "
                f"| {a2 / p2:.1f}x |"
            )
    finally:
        lab.down()
        subprocess.run(["rm", "-rf", str(tmp)])


if __name__ == "__main__":
    main()
