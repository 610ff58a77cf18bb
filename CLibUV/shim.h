#ifndef CLIBUV_SHIM_H
#define CLIBUV_SHIM_H

#include <uv.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <spawn.h>
#include <signal.h>
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#endif

// Swift imports uv_tcp_t, uv_pipe_t, uv_stream_t and uv_handle_t as unrelated structs; C's
// "first member" up-casts are spelled here once instead of with unsafeBitCast at every call site.
static inline uv_stream_t *cuv_tcp_as_stream(uv_tcp_t *tcp) { return (uv_stream_t *)tcp; }
static inline uv_handle_t *cuv_tcp_as_handle(uv_tcp_t *tcp) { return (uv_handle_t *)tcp; }
static inline uv_handle_t *cuv_stream_as_handle(uv_stream_t *s) { return (uv_handle_t *)s; }
static inline uv_stream_t *cuv_pipe_as_stream(uv_pipe_t *p) { return (uv_stream_t *)p; }
static inline uv_handle_t *cuv_process_as_handle(uv_process_t *p) { return (uv_handle_t *)p; }
static inline uv_handle_t *cuv_timer_as_handle(uv_timer_t *t) { return (uv_handle_t *)t; }
static inline uv_handle_t *cuv_async_as_handle(uv_async_t *a) { return (uv_handle_t *)a; }
static inline uv_handle_t *cuv_signal_as_handle(uv_signal_t *s) { return (uv_handle_t *)s; }
static inline uv_handle_t *cuv_prepare_as_handle(uv_prepare_t *p) { return (uv_handle_t *)p; }
static inline uv_prepare_t *cuv_handle_as_prepare(uv_handle_t *h) { return (uv_prepare_t *)h; }
static inline uv_handle_t *cuv_idle_as_handle(uv_idle_t *i) { return (uv_handle_t *)i; }
static inline uv_idle_t *cuv_handle_as_idle(uv_handle_t *h) { return (uv_idle_t *)h; }

// sockaddr_in6 and sockaddr_storage are cast to sockaddr for bind/connect/getsockname.
static inline const struct sockaddr *cuv_sockaddr(const void *storage) {
    return (const struct sockaddr *)storage;
}
static inline struct sockaddr *cuv_sockaddr_mut(void *storage) { return (struct sockaddr *)storage; }

// uv_buf_t's field order differs between platforms; uv_buf_init is a function, this is inline.
static inline uv_buf_t cuv_buf(void *base, size_t len) {
    uv_buf_t b;
    b.base = (char *)base;
    b.len = len;
    return b;
}

// openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS: opens `path` under the directory
// `root` only if resolving it (symbolic links included) never leaves `root`. glibc has no
// wrapper and Swift cannot call the variadic syscall(2). Returns the descriptor, or -1 with
// errno (ENOSYS where the kernel or headers lack it; EXDEV for a path that leaves `root`).
static inline int cuv_open_beneath(int root, const char *path, int flags) {
#if defined(SYS_openat2) && defined(RESOLVE_BENEATH)
    struct open_how how = {0};
    how.flags = (unsigned long long)flags;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, root, path, &how, sizeof how);
#else
    (void)root; (void)path; (void)flags;
    errno = ENOSYS;
    return -1;
#endif
}


// posix_spawn's file actions that glibc declares as extensions (2.29 and 2.34), for
// ChildProcess: the child's working directory, and no descriptor above the standard three.
static inline int cuv_spawn_add_chdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}
// A connected pair of Unix stream sockets, close-on-exec: what a child's standard stream is
// made of (as libuv makes it), since a socket can be half-closed (shutdown) and a pipe cannot.
static inline int cuv_socketpair_cloexec(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
}
static inline int cuv_spawn_add_closefrom(posix_spawn_file_actions_t *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest);
}

#endif
