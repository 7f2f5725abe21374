"""Benchmark: `provision host --no-install` beside ansible-playbook (plain and with mitogen) and
pyinfra doing the same host preparation (playbooks/host.yml and bench/pyinfra_host.py render
the same templates with the same variables) on the same N light lab hosts, in one invocation:
first run and immediate rerun, wall seconds, what each rerun reported changed, and the ratios.

Usage (root, from the project's venv):
    python3 -m venv /var/tmp/berth-fleet-bench-venv
    /var/tmp/berth-fleet-bench-venv/bin/pip install ansible-core mitogen pyinfra
    .venv/bin/python bench/provision_fleet.py [--hosts 50] [--forks 50] [--peers VENV]

The hosts are tests/lab/light.py's (network namespace + chroot + sshd, no systemd); every tool
runs in the fleet's fabric namespace and starts from the same fresh state (the bench resets the
hosts before each tool's first run). Targets (issue 19): rerun of 50 hosts <= 5 s and faster
than each peer's rerun; first run >= 10x faster than plain ansible-playbook.
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
from tests.lab.light import LightFleet  # noqa: E402
from tests.provision.labutil import build_apt_repo  # noqa: E402

RESET = (
    "[ -e /root/.bench-sources.list ] || cp /etc/apt/sources.list /root/.bench-sources.list; "
    "rm -rf /etc/berth /etc/docker /etc/modules-load.d/berth.conf* /etc/sysctl.d/99-berth.conf* "
    "/etc/apt/sources.list.*; cp /root/.bench-sources.list /etc/apt/sources.list; "
    "rm -f /var/lib/apt/lists/*_dists_*; groupdel docker 2>/dev/null; "
    "nf=net.bridge.bridge-nf-call; sysctl -qw net.ipv4.ip_forward=0 $nf-iptables=0 $nf-ip6tables=0; true"
)
PORT = 8731


def reset(fleet):
    with concurrent.futures.ThreadPoolExecutor(max_workers=25) as pool:
        list(pool.map(lambda h: fleet.exec(fleet.ssh_argv(h, RESET), timeout=120), fleet.hosts))


def timed(fleet, argv, env=None):
    t0 = time.monotonic()
    p = fleet.exec(argv, check=False, env=env, cwd=ROOT)
    return time.monotonic() - t0, p


def failed(p, what):
    """None when ``p`` succeeded, else one line saying so (its output's tail printed)."""
    if p.returncode == 0:
        return None
    print(f"{what} exited {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}", flush=True)
    return f"exit {p.returncode}"


def provision_changed(p):
    return sum(r["changed"] for r in json.loads(p.stdout))


def ansible_changed(p):
    return sum(int(x) for x in re.findall(r"changed=(\d+)", p.stdout))


def pyinfra_changed(p):
    # the "Grand total" row of pyinfra's results: hosts, success (= ran a change), error, no change;
    # its shell operation (the module loading) always counts as a change, as ansible's would
    # without changed_when
    m = re.search(r"Grand total\s+(\S+)\s+(\S+)", p.stdout + p.stderr)
    return "?" if not m else (0 if m.group(2) == "-" else int(m.group(2)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--forks", type=int, default=50)
    ap.add_argument("--peers", default="/var/tmp/berth-fleet-bench-venv",
                    help="a venv with ansible-core, mitogen and pyinfra (pip)")
    ap.add_argument("--tools", default="provision,ansible,mitogen,pyinfra")
    args = ap.parse_args()
    tools = args.tools.split(",")
    peers = pathlib.Path(args.peers) / "bin"
    if any(t != "provision" for t in tools) and not (peers / "ansible-playbook").exists():
        sys.exit(f"{peers}/ansible-playbook is missing: see the usage in {__file__}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the finally below still runs
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="berth-bench-"))
    t0 = time.monotonic()
    with LightFleet(args.hosts) as fleet:
        print(f"{args.hosts} light hosts up in {time.monotonic() - t0:.1f} s", flush=True)
        server = fleet.popen([sys.executable, "-m", "http.server", str(PORT), "--bind", fleet.gateway,
                              "--directory", str(build_apt_repo(tmp / "mirror"))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            rows = run_all(fleet, tmp, tools, peers, args.forks, f"http://{fleet.gateway}:{PORT}")
        finally:
            server.terminate()
            server.wait()
            subprocess.run(["rm", "-rf", str(tmp)])
    report(rows, args.hosts)


def run_all(fleet, tmp, tools, peers, forks, mirror):
    hosts = fleet.hosts
    opts = Options(mirror=mirror, gpgcheck=False, registry_mirrors=["https://registry.example.com"],
                   gid=2375, users=["tester"])  # fmt: skip
    osr = fleet.exec(fleet.ssh_argv(hosts[0], "cat /etc/os-release")).stdout.replace('"', "")
    plat = detect(dict(line.split("=", 1) for line in osr.splitlines() if "=" in line))
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
    kh, key = fleet.known_hosts, fleet.key
    (tmp / "inventory.ini").write_text("[all]\n" + "".join(
        f"{h.name} ansible_host={h.ip} ansible_user=root ansible_ssh_private_key_file={key} "
        f"ansible_ssh_common_args='-o UserKnownHostsFile={kh} -o StrictHostKeyChecking=yes'\n"
        for h in hosts))  # fmt: skip
    (tmp / "inventory.py").write_text("hosts = %r\n" % [
        (h.ip, {"ssh_user": "root", "ssh_key": key, "ssh_known_hosts_file": kh,
                "ssh_strict_host_key_checking": "yes"}) for h in hosts])  # fmt: skip
    aenv = dict(
        os.environ,
        PATH=f"{peers}:{os.environ['PATH']}",
        ANSIBLE_HOME=str(tmp / "ansible"),
        ANSIBLE_LOCAL_TEMP=str(tmp / "ansible/tmp"),
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp / "cp"),
        ANSIBLE_PIPELINING="True",
        ANSIBLE_HOST_KEY_CHECKING="True",
        ANSIBLE_FORKS=str(forks),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3",
        ANSIBLE_DEPRECATION_WARNINGS="False",
        ANSIBLE_TIMEOUT="120",  # a loaded machine answers 50 connections slowly (default 10 s)
    )
    runs = {
        "provision": ([sys.executable, "-c", "from provision.cli import main; main()", "host",
                       "--no-install", *[h.ip for h in hosts], "--mirror", mirror, "--no-gpgcheck",
                       "--registry-mirror", "https://registry.example.com", "--gid", "2375",
                       "--user", "tester", "-i", key, "--known-hosts", kh, "--forks", str(forks),
                       "--json"], None, provision_changed),  # fmt: skip
        "ansible": ([str(peers / "ansible-playbook"), "-i", str(tmp / "inventory.ini"),
                     "-e", f"@{tmp / 'vars.json'}", "playbooks/host.yml"], aenv, ansible_changed),
        "pyinfra": ([str(peers / "pyinfra"), "-y", "--parallel", str(forks), str(tmp / "inventory.py"),
                     "bench/pyinfra_host.py", "--data", f"vars_file={tmp / 'vars.json'}"],
                    dict(os.environ, PATH=f"{peers}:{os.environ['PATH']}"), pyinfra_changed),
    }
    if "mitogen" in tools:
        where = subprocess.run([str(peers / "python"), "-c", "import ansible_mitogen, os; "
                                "print(os.path.dirname(ansible_mitogen.__file__))"],
                               stdout=subprocess.PIPE, text=True, check=True).stdout.strip()  # fmt: skip
        strategy = f"{where}/plugins/strategy"
        menv = dict(aenv, ANSIBLE_STRATEGY_PLUGINS=strategy, ANSIBLE_STRATEGY="mitogen_linear")
        runs["mitogen"] = (runs["ansible"][0], menv, ansible_changed)
    rows = []
    for tool in tools:
        argv, env, changed = runs[tool]
        reset(fleet)
        first, p1 = timed(fleet, argv, env)
        rerun, p2 = timed(fleet, argv, env)
        bad = failed(p1, f"{tool} (first run)") or failed(p2, f"{tool} (rerun)")
        ch1, ch2 = ("?", bad) if bad else (changed(p1), changed(p2))
        rows.append((tool, first, rerun, ch1, ch2))
        print(f"{tool:>10}: first {first:7.2f} s (changed {ch1}), rerun {rerun:6.2f} s (changed {ch2})",
              flush=True)  # fmt: skip
    reset(fleet)
    return rows


def report(rows, n):
    by = {r[0]: r for r in rows}
    print(f"\n| tool ({n} hosts) | first run | rerun | changed on rerun | first / provision's "
          "| rerun / provision's |")
    print("|---|---|---|---|---|---|")
    p = by.get("provision")
    for tool, first, rerun, _, ch2 in rows:
        r1 = f"{first / p[1]:.1f}x" if p else "-"
        r2 = f"{rerun / p[2]:.1f}x" if p else "-"
        print(f"| {tool} | {first:.2f} s | {rerun:.2f} s | {ch2} | {r1} | {r2} |")
    if p:
        peers = [r for r in rows if r[0] != "provision"]
        print(f"\ntarget rerun <= 5 s: {'met' if p[2] <= 5 else 'NOT met'} ({p[2]:.2f} s)")
        if peers:
            ok = all(p[2] < r[2] for r in peers)
            print(f"target rerun faster than each peer: {'met' if ok else 'NOT met'}")
        if "ansible" in by:
            ratio = by["ansible"][1] / p[1]
            print(f"target first run >= 10x faster than plain ansible: {'met' if ratio >= 10 else 'NOT met'} "
                  f"({ratio:.1f}x)")


if __name__ == "__main__":
    main()
