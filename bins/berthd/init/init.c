/*
 * berth's `--init`: a minimal PID 1 for containers, bind-mounted as
 * /sbin/docker-init. It runs its arguments as a child in the foreground,
 * forwards every catchable signal to it, reaps every zombie that is
 * reparented to it, and exits with the child's status (128 + signal when the
 * child was killed), as tini does for docker. Built statically by build.rs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t child_pid = 0;

static void forward(int sig) {
    if (child_pid > 0) {
        kill(child_pid, sig);
    }
}

int main(int argc, char **argv) {
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--") == 0) {
        first = 2;
    }
    if (first >= argc) {
        fprintf(stderr, "docker-init: usage: docker-init [--] PROGRAM [ARGS...]\n");
        return 1;
    }
    /* Not PID 1 (e.g. --pid host): still reap orphans. */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);

    pid_t pid = fork();
    if (pid < 0) {
        perror("docker-init: fork");
        return 1;
    }
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        /* Its own process group, so a terminal's signals reach it directly. */
        setpgid(0, 0);
        execvp(argv[first], &argv[first]);
        fprintf(stderr, "docker-init: exec %s failed: %s\n", argv[first], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    child_pid = pid;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sigfillset(&sa.sa_mask);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP || sig == SIGCHLD) {
            continue;
        }
        sigaction(sig, &sa, NULL);
    }
    sigset_t run = old;
    sigdelset(&run, SIGCHLD);
    sigprocmask(SIG_SETMASK, &run, NULL);

    for (;;) {
        int status;
        pid_t reaped = waitpid(-1, &status, 0);
        if (reaped < 0) {
            if (errno == EINTR) {
                continue;
            }
            return 1;
        }
        if (reaped == pid) {
            if (WIFEXITED(status)) {
                return WEXITSTATUS(status);
            }
            if (WIFSIGNALED(status)) {
                return 128 + WTERMSIG(status);
            }
            return 1;
        }
    }
}
