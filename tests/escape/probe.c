/* The escape corpus: each probe tries one way out of a container and prints one line,
 * "NAME escaped" or "NAME blocked ERRNO". Run as root inside the container:
 *     probe DISK_MAJOR DISK_MINOR OUTSIDE_PID
 * Every probe is harmless if it succeeds: sysrq gets 'h' (help), core_pattern gets its own
 * value back, reboot asks for CAD_OFF (EINVAL in a PID namespace), module loading gets
 * /dev/null, the cgroup files are only opened. Built static by tests/escape/corpus.py. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *name_of(int e) {
    switch (e) {
    case EPERM: return "EPERM"; case EACCES: return "EACCES"; case EROFS: return "EROFS";
    case ENOENT: return "ENOENT"; case ESRCH: return "ESRCH"; case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS"; case EBADF: return "EBADF"; case ENOEXEC: return "ENOEXEC";
    case EEXIST: return "EEXIST"; case ENODEV: return "ENODEV"; case EOPNOTSUPP: return "EOPNOTSUPP";
    case ESTALE: return "ESTALE"; case EFAULT: return "EFAULT"; case ENOTDIR: return "ENOTDIR";
    default: { static char buf[16]; snprintf(buf, sizeof buf, "E%d", e); return buf; }
    }
}

static void report(const char *name, int ok, int err) {
    if (ok) printf("%s escaped\n", name);
    else printf("%s blocked %s\n", name, name_of(err));
    fflush(stdout);
}

static void disk(unsigned maj, unsigned min) {
    unlink("/probe-disk");
    if (mknod("/probe-disk", S_IFBLK | 0600, makedev(maj, min)) < 0) { report("mknod-disk-read", 0, errno); return; }
    int fd = open("/probe-disk", O_RDONLY);
    char buf[512];
    if (fd < 0) { report("mknod-disk-read", 0, errno); unlink("/probe-disk"); return; }
    ssize_t n = read(fd, buf, sizeof buf);
    report("mknod-disk-read", n == (ssize_t)sizeof buf, n < 0 ? errno : EIO);
    close(fd);
    unlink("/probe-disk");
}

static void do_mount(void) {
    mkdir("/probe-mnt", 0755);
    int r = mount("probe", "/probe-mnt", "tmpfs", 0, NULL);
    report("mount", r == 0, errno);
    if (r == 0) umount("/probe-mnt");
    rmdir("/probe-mnt");
}

static void handle(void) {
    /* shocker: a handle of inode 2 (the root of most filesystems) on the mount of "/" */
    struct { unsigned int bytes; int type; unsigned char f[8]; } h = { 8, 1, { 2, 0, 0, 0, 0, 0, 0, 0 } };
    int mfd = open("/", O_RDONLY | O_DIRECTORY);
    int fd = syscall(SYS_open_by_handle_at, mfd, &h, O_RDONLY);
    report("open_by_handle_at", fd >= 0, errno);
    if (fd >= 0) close(fd);
    close(mfd);
}

static void write_file(const char *name, const char *path, int same_value) {
    char buf[512] = "h";
    ssize_t len = 1;
    if (same_value) {
        int r = open(path, O_RDONLY);
        len = r < 0 ? -1 : read(r, buf, sizeof buf);
        if (r >= 0) close(r);
        if (len <= 0) { buf[0] = '\n'; len = 1; }
    }
    int fd = open(path, O_WRONLY);
    if (fd < 0) { report(name, 0, errno); return; }
    ssize_t n = write(fd, buf, len);
    report(name, n == len, errno);
    close(fd);
}

static void cgroup_files(void) {
    const char *paths[] = { "/sys/fs/cgroup/cgroup.procs", "/sys/fs/cgroup/devices/devices.allow",
                            "/sys/fs/cgroup/memory/cgroup.procs", "/sys/fs/cgroup/unified/cgroup.procs",
                            "/sys/fs/cgroup/release_agent", "/sys/fs/cgroup/memory/release_agent", NULL };
    int err = ENOENT;
    for (int i = 0; paths[i]; i++) {
        int fd = open(paths[i], O_WRONLY);
        if (fd >= 0) { close(fd); report("cgroup-write", 1, 0); return; }
        if (errno != ENOENT) err = errno;
    }
    if (mount("cgroup", "/mnt", "cgroup", 0, "devices") == 0) { umount("/mnt"); report("cgroup-write", 1, 0); return; }
    report("cgroup-write", 0, err);
}

static void module(void) {
    int fd = open("/dev/null", O_RDONLY);
    int r = syscall(SYS_finit_module, fd, "", 0);
    int e = errno;
    close(fd);
    report("finit_module", r == 0, e);
}

static void keys(void) {
    long r = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -4 /* user keyring */, 0);
    report("keyctl", r >= 0, errno);
}

static void trace(int pid) {
    long r = ptrace(PTRACE_ATTACH, pid, 0, 0);
    report("ptrace-outside", r == 0, errno);
    if (r == 0) ptrace(PTRACE_DETACH, pid, 0, 0);
}

static void userns(void) {
    pid_t child = fork();
    if (child == 0) {  /* unshare --user --map-root-user, then try what root could */
        if (unshare(CLONE_NEWUSER) < 0) _exit(100 + errno);
        int fd = open("/proc/self/setgroups", O_WRONLY);
        if (fd >= 0) { (void)!write(fd, "deny", 4); close(fd); }
        _exit(0);
    }
    int st = 0;
    waitpid(child, &st, 0);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
    report("unshare-user", code == 0, code >= 100 ? code - 100 : EIO);
}

static void perf(void) {
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a; a.type = PERF_TYPE_SOFTWARE; a.config = PERF_COUNT_SW_CPU_CLOCK;
    a.exclude_kernel = 1;
    int fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    report("perf_event_open", fd >= 0, errno);
    if (fd >= 0) close(fd);
}

static void do_bpf(void) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = BPF_MAP_TYPE_ARRAY; a.key_size = 4; a.value_size = 4; a.max_entries = 1;
    int fd = syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a);
    report("bpf", fd >= 0, errno);
    if (fd >= 0) close(fd);
}

static void do_reboot(void) {
    long r = syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_CAD_OFF, 0);
    report("reboot", r == 0, errno);
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: probe DISK_MAJOR DISK_MINOR OUTSIDE_PID\n"); return 2; }
    disk(atoi(argv[1]), atoi(argv[2]));
    do_mount();
    handle();
    write_file("sysrq-trigger", "/proc/sysrq-trigger", 0);
    write_file("proc-sys-kernel", "/proc/sys/kernel/core_pattern", 1);
    cgroup_files();
    module();
    keys();
    trace(atoi(argv[3]));
    userns();
    perf();
    do_bpf();
    do_reboot();
    return 0;
}
