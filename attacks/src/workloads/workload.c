/*
 * breakout's benign C workloads: one binary, one subcommand per workload, built on the host with
 * `cc` twice (dynamic, and -static for the static-binary workload) and put into the guest only
 * when workloads run.
 *
 *   workload MODE NONCE [N]
 *
 * Every mode prints lines derived from NONCE (a fresh per-attempt word the outside chose) that
 * the outside compares with what it computed itself; the exit code decides nothing. A failing
 * step prints one line `FAIL <syscall>: <ERRNO>` on stderr and exits 1, so a broken workload is
 * reported with the syscall and errno the sandbox answered.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

static const char *errname(int e) {
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

/* One failed step: the syscall and the errno the kernel (or a filter) answered. */
static void fail(const char *syscall) {
    int e = errno;
    fprintf(stderr, "FAIL %s: %s\n", syscall, errname(e));
    fflush(stderr);
    _exit(1);
}

static void fail_msg(const char *step, const char *what) {
    fprintf(stderr, "FAIL %s: %s\n", step, what);
    fflush(stderr);
    _exit(1);
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static void reverse(const char *in, char *outbuf) {
    size_t n = strlen(in);
    for (size_t i = 0; i < n; i++) outbuf[i] = in[n - 1 - i];
    outbuf[n] = 0;
}

static void upper(const char *in, char *outbuf) {
    size_t i = 0;
    for (; in[i]; i++) outbuf[i] = (in[i] >= 'a' && in[i] <= 'z') ? in[i] - 32 : in[i];
    outbuf[i] = 0;
}

static const char *tmpdir(void) {
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

static void write_all(int fd, const char *buf, size_t len, const char *syscall) {
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            fail(syscall);
        }
        buf += w;
        len -= (size_t)w;
    }
}

static size_t read_full(int fd, char *buf, size_t cap, const char *syscall) {
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            fail(syscall);
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return got;
}

/* ---- c-program: file I/O, mmap + mprotect, pthreads, fork/exec/wait ---- */

struct slot {
    int index;
    const char *nonce;
    char text[96];
};

static void *thread_main(void *arg) {
    struct slot *s = arg;
    snprintf(s->text, sizeof s->text, "t%d:%s", s->index, s->nonce);
    return NULL;
}

static int mode_c_program(const char *nonce) {
    char path[256];
    snprintf(path, sizeof path, "%s/workload-c-XXXXXX", tmpdir());
    int fd = mkstemp(path);
    if (fd < 0) fail("openat (mkstemp)");
    write_all(fd, nonce, strlen(nonce), "write");
    if (fsync(fd) < 0) fail("fsync");
    char back[128] = {0};
    if (pread(fd, back, sizeof back - 1, 0) < 0) fail("pread64");
    out("file %s\n", back);

    long page = sysconf(_SC_PAGESIZE);
    if (ftruncate(fd, page) < 0) fail("ftruncate");
    char *map = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) fail("mmap");
    for (size_t i = 0; nonce[i]; i++) map[i] = nonce[i] == 'a' ? 'A' : nonce[i];
    if (msync(map, (size_t)page, MS_SYNC) < 0) fail("msync");
    if (mprotect(map, (size_t)page, PROT_READ) < 0) fail("mprotect");
    out("mmap %.*s\n", (int)strlen(nonce), map);
    if (munmap(map, (size_t)page) < 0) fail("munmap");
    close(fd);
    if (unlink(path) < 0) fail("unlink");

    /* Anonymous memory made executable-free read-only after writing: the W^X dance a JIT does
       without the X. */
    char *anon = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (anon == MAP_FAILED) fail("mmap (anonymous)");
    snprintf(anon, (size_t)page, "anon %s", nonce);
    if (mprotect(anon, (size_t)page, PROT_READ) < 0) fail("mprotect (anonymous)");
    out("%s\n", anon);

    enum { THREADS = 4 };
    pthread_t t[THREADS];
    struct slot slots[THREADS];
    for (int i = 0; i < THREADS; i++) {
        slots[i].index = i;
        slots[i].nonce = nonce;
        int rc = pthread_create(&t[i], NULL, thread_main, &slots[i]);
        if (rc != 0) {
            errno = rc;
            fail("clone (pthread_create)");
        }
    }
    for (int i = 0; i < THREADS; i++) {
        int rc = pthread_join(t[i], NULL);
        if (rc != 0) {
            errno = rc;
            fail("futex (pthread_join)");
        }
        out("%s\n", slots[i].text);
    }

    pid_t child = fork();
    if (child < 0) fail("fork");
    if (child == 0) {
        char word[160];
        snprintf(word, sizeof word, "exec %s", nonce);
        execl("/bin/sh", "sh", "-c", "echo \"$0\"; exit 7", word, (char *)NULL);
        fprintf(stderr, "FAIL execve: %s\n", errname(errno));
        _exit(127);
    }
    int status;
    if (waitpid(child, &status, 0) < 0) fail("wait4");
    if (!WIFEXITED(status)) fail_msg("wait4", "child did not exit normally");
    if (WEXITSTATUS(status) == 127) fail_msg("execve", "the child could not exec /bin/sh");
    out("wait %d\n", WEXITSTATUS(status));
    return 0;
}

/* ---- static: the same file round trip in a binary with no dynamic loader ---- */

static int mode_static(const char *nonce) {
    char path[256];
    snprintf(path, sizeof path, "%s/workload-static-XXXXXX", tmpdir());
    int fd = mkstemp(path);
    if (fd < 0) fail("openat (mkstemp)");
    write_all(fd, nonce, strlen(nonce), "write");
    if (lseek(fd, 0, SEEK_SET) < 0) fail("lseek");
    char back[128] = {0};
    read_full(fd, back, sizeof back - 1, "read");
    close(fd);
    if (unlink(path) < 0) fail("unlink");
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0) fail("clock_gettime");
    out("static %s pid-known=%d\n", back, getpid() > 0);
    return 0;
}

/* ---- tcp: a server and a client process on the sandbox's own loopback ---- */

static int mode_tcp(const char *nonce) {
    int srv = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (srv < 0) fail("socket");
    int one = 1;
    if (setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) fail("setsockopt");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(srv, (struct sockaddr *)&a, sizeof a) < 0) fail("bind");
    if (listen(srv, 4) < 0) fail("listen");
    socklen_t len = sizeof a;
    if (getsockname(srv, (struct sockaddr *)&a, &len) < 0) fail("getsockname");

    pid_t client = fork();
    if (client < 0) fail("fork");
    if (client == 0) {
        close(srv);
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0) fail("socket (client)");
        if (connect(c, (struct sockaddr *)&a, sizeof a) < 0) fail("connect");
        write_all(c, nonce, strlen(nonce), "sendto (client)");
        if (shutdown(c, SHUT_WR) < 0) fail("shutdown");
        char reply[160] = {0};
        read_full(c, reply, sizeof reply - 1, "recvfrom (client)");
        out("tcp %s\n", reply);
        _exit(0);
    }
    int conn = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) fail("accept4");
    char got[128] = {0};
    read_full(conn, got, sizeof got - 1, "recvfrom (server)");
    char rev[128];
    reverse(got, rev);
    write_all(conn, rev, strlen(rev), "sendto (server)");
    close(conn);
    int status;
    if (waitpid(client, &status, 0) < 0) fail("wait4");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail_msg("client", "the client process failed");
    return 0;
}

/* ---- unix-pipes: a pipe one way, a named unix socket back ---- */

static int mode_unix_pipes(const char *nonce) {
    char dir[64];
    snprintf(dir, sizeof dir, "%.40s/workload-unix-XXXXXX", tmpdir());
    if (!mkdtemp(dir)) fail("mkdir (mkdtemp)");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/sock", dir);
    int srv = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (srv < 0) fail("socket (AF_UNIX)");
    if (bind(srv, (struct sockaddr *)&sa, sizeof sa) < 0) fail("bind (AF_UNIX)");
    if (listen(srv, 2) < 0) fail("listen (AF_UNIX)");
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) fail("pipe2");
    pid_t child = fork();
    if (child < 0) fail("fork");
    if (child == 0) {
        close(p[1]);
        close(srv);
        char got[128] = {0};
        read_full(p[0], got, sizeof got - 1, "read (pipe)");
        char up[128];
        upper(got, up);
        int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0) fail("socket (AF_UNIX client)");
        if (connect(c, (struct sockaddr *)&sa, sizeof sa) < 0) fail("connect (AF_UNIX)");
        write_all(c, up, strlen(up), "write (AF_UNIX)");
        _exit(0);
    }
    close(p[0]);
    write_all(p[1], nonce, strlen(nonce), "write (pipe)");
    close(p[1]);
    int conn = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) fail("accept4 (AF_UNIX)");
    char back[128] = {0};
    read_full(conn, back, sizeof back - 1, "read (AF_UNIX)");
    out("unix %s\n", back);
    int status;
    if (waitpid(child, &status, 0) < 0) fail("wait4");
    unlink(sa.sun_path);
    rmdir(dir);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail_msg("child", "the child process failed");
    return 0;
}

/* ---- signals: to its own children ---- */

static volatile sig_atomic_t got_usr1;
static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }

static int mode_signals(const char *nonce) {
    enum { CHILDREN = 3 };
    pid_t kids[CHILDREN];
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) < 0) fail("pipe2");
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    /* Blocked before fork so a child cannot miss the signal before it waits for it. */
    if (sigprocmask(SIG_BLOCK, &block, &old) < 0) fail("rt_sigprocmask");
    for (int i = 0; i < CHILDREN; i++) {
        kids[i] = fork();
        if (kids[i] < 0) fail("fork");
        if (kids[i] == 0) {
            struct sigaction sa = {.sa_handler = on_usr1};
            if (sigaction(SIGUSR1, &sa, NULL) < 0) fail("rt_sigaction");
            if (write(ready[1], "r", 1) != 1) fail("write (ready)");
            while (!got_usr1) sigsuspend(&old);
            _exit(10 + i);
        }
    }
    close(ready[1]);
    char r[CHILDREN];
    if (read_full(ready[0], r, CHILDREN, "read (ready)") != CHILDREN) fail_msg("read", "children not ready");
    int usr1 = 0, term = 0;
    for (int i = 0; i < CHILDREN; i++)
        if (kill(kids[i], SIGUSR1) < 0) fail("kill (SIGUSR1)");
    for (int i = 0; i < CHILDREN; i++) {
        int status;
        if (waitpid(kids[i], &status, 0) < 0) fail("wait4");
        if (WIFEXITED(status) && WEXITSTATUS(status) == 10 + i) usr1++;
    }
    pid_t sleeper = fork();
    if (sleeper < 0) fail("fork");
    if (sleeper == 0) {
        for (;;) pause();
    }
    if (kill(sleeper, SIGTERM) < 0) fail("kill (SIGTERM)");
    int status;
    if (waitpid(sleeper, &status, 0) < 0) fail("wait4");
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) term++;
    out("signals usr1=%d term=%d %s\n", usr1, term, nonce);
    return 0;
}

/* ---- timers: clocks, sleeps, interval timers, POSIX timers, timerfd ---- */

static volatile sig_atomic_t alarms;
static void on_alarm(int sig) { (void)sig; alarms++; }

static double since(const struct timespec *a) {
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) + (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

static int mode_timers(const char *nonce) {
    struct timespec mono, real, boot, cpu, start;
    if (clock_gettime(CLOCK_MONOTONIC, &mono) < 0) fail("clock_gettime (MONOTONIC)");
    if (clock_gettime(CLOCK_REALTIME, &real) < 0) fail("clock_gettime (REALTIME)");
    if (clock_gettime(CLOCK_BOOTTIME, &boot) < 0) fail("clock_gettime (BOOTTIME)");
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu) < 0) fail("clock_gettime (PROCESS_CPUTIME_ID)");
    struct timeval tv;
    if (gettimeofday(&tv, NULL) < 0) fail("gettimeofday");
    start = mono;
    struct timespec nap = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
    if (nanosleep(&nap, NULL) < 0) fail("nanosleep");
    if (clock_nanosleep(CLOCK_MONOTONIC, 0, &nap, NULL) != 0) fail_msg("clock_nanosleep", "failed");
    int slept = since(&start) >= 0.020;

    struct sigaction sa = {.sa_handler = on_alarm};
    if (sigaction(SIGALRM, &sa, NULL) < 0) fail("rt_sigaction");
    struct itimerval it = {.it_value = {.tv_sec = 0, .tv_usec = 20000}};
    if (setitimer(ITIMER_REAL, &it, NULL) < 0) fail("setitimer");
    while (alarms < 1) pause();

    timer_t t;
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGALRM};
    if (timer_create(CLOCK_MONOTONIC, &ev, &t) < 0) fail("timer_create");
    struct itimerspec its = {.it_value = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000}};
    if (timer_settime(t, 0, &its, NULL) < 0) fail("timer_settime");
    while (alarms < 2) pause();
    if (timer_delete(t) < 0) fail("timer_delete");

    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    if (tfd < 0) fail("timerfd_create");
    if (timerfd_settime(tfd, 0, &its, NULL) < 0) fail("timerfd_settime");
    uint64_t expirations = 0;
    if (read(tfd, &expirations, sizeof expirations) != sizeof expirations) fail("read (timerfd)");
    close(tfd);
    out("timers slept=%d alarms=%d timerfd=%d %s\n", slept, (int)alarms, expirations >= 1, nonce);
    return 0;
}

/* ---- memory: allocate and touch N bytes ---- */

static int mode_memory(const char *nonce, unsigned long long bytes) {
    unsigned char *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) fail("mmap");
    long page = sysconf(_SC_PAGESIZE);
    unsigned long long touched = 0;
    for (unsigned long long i = 0; i < bytes; i += (unsigned long long)page) {
        m[i] = (unsigned char)(i / (unsigned long long)page);
        touched++;
    }
    unsigned long long sum = 0;
    for (unsigned long long i = 0; i < bytes; i += (unsigned long long)page) sum += m[i];
    unsigned long long want = 0;
    for (unsigned long long p = 0; p < touched; p++) want += (unsigned char)p;
    if (sum != want) fail_msg("memory", "pages did not keep what was written");
    if (munmap(m, bytes) < 0) fail("munmap");
    out("memory %llu %s\n", bytes, nonce);
    return 0;
}

/* ---- processes: N live children at once ---- */

static int mode_processes(const char *nonce, int n) {
    int hold[2];
    if (pipe2(hold, O_CLOEXEC) < 0) fail("pipe2");
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) < 0) fail("pipe2");
    pid_t *kids = calloc((size_t)n, sizeof *kids);
    if (!kids) fail_msg("calloc", "out of memory");
    int started = 0;
    for (int i = 0; i < n; i++) {
        pid_t k = fork();
        if (k < 0) {
            int e = errno;
            close(hold[1]);
            for (int j = 0; j < started; j++) waitpid(kids[j], NULL, 0);
            errno = e;
            fail("fork");
        }
        if (k == 0) {
            close(hold[1]);
            close(ready[0]);
            if (write(ready[1], "r", 1) != 1) _exit(2);
            char c;
            /* Alive until the parent closes the hold pipe. */
            while (read(hold[0], &c, 1) > 0) {}
            _exit(0);
        }
        kids[started++] = k;
    }
    close(ready[1]);
    char *r = malloc((size_t)n);
    size_t got = read_full(ready[0], r, (size_t)n, "read (ready)");
    close(hold[1]);
    int ok = 0;
    for (int i = 0; i < started; i++) {
        int status;
        if (waitpid(kids[i], &status, 0) < 0) fail("wait4");
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ok++;
    }
    out("processes alive=%zu reaped=%d %s\n", got, ok, nonce);
    return 0;
}

/* ---- proc-self: what a program reads about itself ---- */

static int mode_proc_self(void) {
    char buf[8192];
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("openat (/proc/self/cmdline)");
    size_t n = read_full(fd, buf, sizeof buf - 1, "read (/proc/self/cmdline)");
    close(fd);
    /* argv[2] is the nonce: cmdline is NUL-separated. */
    const char *arg = buf;
    for (int i = 0; i < 2 && arg < buf + n; i++) arg += strlen(arg) + 1;
    out("cmdline %s\n", arg < buf + n ? arg : "");

    FILE *st = fopen("/proc/self/status", "re");
    if (!st) fail("openat (/proc/self/status)");
    char line[256];
    long pid = -1;
    while (fgets(line, sizeof line, st))
        if (sscanf(line, "Pid: %ld", &pid) == 1) break;
    fclose(st);
    out("status-pid-matches %d\n", pid == (long)getpid());

    char exe[512];
    ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (l < 0) fail("readlink (/proc/self/exe)");
    exe[l] = 0;
    const char *base = strrchr(exe, '/');
    out("exe %s\n", base ? base + 1 : exe);

    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps) fail("openat (/proc/self/maps)");
    int stack = 0;
    while (fgets(line, sizeof line, maps))
        if (strstr(line, "[stack]")) stack = 1;
    fclose(maps);
    out("maps-has-stack %d\n", stack);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: workload MODE NONCE [N]\n");
        return 2;
    }
    const char *mode = argv[1], *nonce = argv[2];
    unsigned long long number = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;
    if (!strcmp(mode, "c-program")) return mode_c_program(nonce);
    if (!strcmp(mode, "static")) return mode_static(nonce);
    if (!strcmp(mode, "tcp")) return mode_tcp(nonce);
    if (!strcmp(mode, "unix-pipes")) return mode_unix_pipes(nonce);
    if (!strcmp(mode, "signals")) return mode_signals(nonce);
    if (!strcmp(mode, "timers")) return mode_timers(nonce);
    if (!strcmp(mode, "memory")) return mode_memory(nonce, number);
    if (!strcmp(mode, "processes")) return mode_processes(nonce, (int)number);
    if (!strcmp(mode, "proc-self")) return mode_proc_self();
    fprintf(stderr, "workload: unknown mode %s\n", mode);
    return 2;
}
