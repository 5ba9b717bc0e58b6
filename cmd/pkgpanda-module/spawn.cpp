#include "spawn.hpp"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <cstdint>
#include <cstring>
#include <system_error>

namespace pkgpanda_module {
namespace {

#if defined(__linux__) && !defined(SYS_close_range)
// close_range(2) has the same number on every architecture (Linux 5.9+).
#define SYS_close_range 436
#endif

// Stages of the child between fork and exec, reported to the parent with
// errno when one fails.
enum ChildStage : int32_t {
  kStageSetpgid = 1,
  kStageStdio = 2,
  kStageParentDied = 3,
  kStageExec = 4,
};

const char* stage_name(int32_t stage) {
  switch (stage) {
    case kStageSetpgid:
      return "creating its process group";
    case kStageStdio:
      return "setting up stdin, stdout and stderr";
    case kStageParentDied:
      return "checking that the supervisor is alive";
    case kStageExec:
      return "executing";
  }
  return "starting";
}

std::string errno_text(int err) {
  return std::error_code(err, std::generic_category()).message();
}

// move_above_stdio makes sure a descriptor we created is not 0, 1 or 2
// (which happens when the host process runs with them closed), so the
// child's dup2 onto stdio cannot clobber it. Returns -1 on failure.
int move_above_stdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int saved = errno;
  close(fd);
  errno = saved;
  return moved;
}

// ---- Child side: everything below runs between fork and execve and calls
// only async-signal-safe functions (no allocation, no locks, no stdio).

struct ChildReport {
  int32_t stage;
  int32_t err;
};

[[noreturn]] void child_fail(int report_fd, int32_t stage) {
  ChildReport r{stage, errno};
  ssize_t n;
  do {
    n = write(report_fd, &r, sizeof r);
  } while (n < 0 && errno == EINTR);
  _exit(127);
}

// parse_fd reads a decimal descriptor number; -1 if it is not one.
int parse_fd(const char* s) {
  if (*s == '\0') return -1;
  int v = 0;
  for (; *s != '\0'; ++s) {
    if (*s < '0' || *s > '9' || v > 100000000) return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

// cloexec_via_proc marks every descriptor above 2 except `keep`
// close-on-exec, listing them from /proc/self/fd. Marking instead of
// closing keeps the directory listing stable while it is read.
bool cloexec_via_proc(int keep) {
#ifdef __linux__
  int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return false;
  alignas(8) char buf[4096];
  for (;;) {
    long n = syscall(SYS_getdents64, dir, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(dir);
      return false;
    }
    if (n == 0) break;
    for (long off = 0; off < n;) {
      // struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name
      unsigned short reclen;
      std::memcpy(&reclen, buf + off + 16, sizeof reclen);
      int fd = parse_fd(buf + off + 19);
      if (fd > 2 && fd != keep && fd != dir) fcntl(fd, F_SETFD, FD_CLOEXEC);
      off += reclen;
    }
  }
  close(dir);
  return true;
#else
  (void)keep;
  return false;
#endif
}

void close_all_but(int keep, rlim_t max_fd, FdCloser closer) {
#ifdef __linux__
  if (closer == FdCloser::kAuto) {
    long a = keep > 3 ? syscall(SYS_close_range, 3u, unsigned(keep - 1), 0u) : 0;
    long b = syscall(SYS_close_range, unsigned(keep + 1), ~0u, 0u);
    if (a == 0 && b == 0) return;
  }
#endif
  if (closer != FdCloser::kBruteForce && cloexec_via_proc(keep)) return;
  for (rlim_t fd = 3; fd < max_fd; ++fd) {
    if (int(fd) != keep) close(int(fd));
  }
}

#ifdef __linux__
// The kernel's sigset size: rt_sigaction and rt_sigprocmask want it exact.
constexpr size_t kKernelSigsetSize = (NSIG - 1) / 8;
#endif

// reset_signal_dispositions sets every signal to SIG_DFL. On Linux it asks
// the kernel directly: libc's sigaction refuses the signals it reserves for
// itself (32 and 33 in glibc), and an ignored one would survive execve. An
// all-zero kernel sigaction is SIG_DFL, no flags, empty mask, whatever the
// architecture's layout.
void reset_signal_dispositions() {
#ifdef __linux__
  alignas(8) unsigned char zero[128];
  std::memset(zero, 0, sizeof zero);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    syscall(SYS_rt_sigaction, sig, zero, nullptr, kKernelSigsetSize);
  }
#else
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);
#endif
}

// unblock_all_signals empties the signal mask (on Linux including the
// signals libc reserves, which its sigprocmask leaves alone).
void unblock_all_signals(const sigset_t* empty) {
#ifdef __linux__
  alignas(8) unsigned char zero[128];
  std::memset(zero, 0, sizeof zero);
  (void)empty;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, zero, nullptr, kKernelSigsetSize);
#else
  sigprocmask(SIG_SETMASK, empty, nullptr);
#endif
}

struct ChildPlan {
  const char* path;
  char* const* argv;
  char* const* envp;
  int devnull;
  int report_fd;
  pid_t parent;
  rlim_t max_fd;
  FdCloser closer;
  const sigset_t* empty_mask;
};

[[noreturn]] void child_exec(const ChildPlan& p) {
  // Dispositions first, while every signal is still blocked (the parent
  // blocked them before fork), so no handler of the host process can run
  // in the child; then the empty mask.
  reset_signal_dispositions();

  if (setpgid(0, 0) != 0) child_fail(p.report_fd, kStageSetpgid);

#ifdef __linux__
  // SIGTERM when the supervising thread goes away without stopping us
  // (the agent exited or crashed). If the parent already died, report it.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != p.parent) {
    errno = ESRCH;
    child_fail(p.report_fd, kStageParentDied);
  }
#endif

  if (dup2(p.devnull, 0) < 0) child_fail(p.report_fd, kStageStdio);
  for (int fd = 1; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) < 0) {
      if (dup2(p.devnull, fd) < 0) child_fail(p.report_fd, kStageStdio);
    } else {
      fcntl(fd, F_SETFD, 0);  // inherited stdout/stderr survive exec
    }
  }

  close_all_but(p.report_fd, p.max_fd, p.closer);

  unblock_all_signals(p.empty_mask);
  execve(p.path, p.argv, p.envp);
  child_fail(p.report_fd, kStageExec);
}

// ---- Parent side.

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const std::string& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// Fds closes what it holds when the spawn returns, however it returns.
struct Fds {
  int devnull = -1, read_end = -1, write_end = -1;
  ~Fds() {
    for (int fd : {devnull, read_end, write_end}) {
      if (fd >= 0) close(fd);
    }
  }
};

}  // namespace

SpawnResult spawn_in_new_group(const Command& command, FdCloser closer) {
  SpawnResult result;
  if (command.path.empty() || command.path[0] != '/') {
    result.error = "the binary path \"" + command.path + "\" is not absolute";
    return result;
  }
  if (command.argv.empty()) {
    result.error = "no argv[0] for " + command.path;
    return result;
  }
  std::vector<char*> argv = c_strings(command.argv);
  std::vector<char*> envp = c_strings(command.env);

  Fds fds;
  fds.devnull = move_above_stdio(open("/dev/null", O_RDWR | O_CLOEXEC));
  if (fds.devnull < 0) {
    result.error = "opening /dev/null: " + errno_text(errno);
    return result;
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    result.error = "creating the exec status pipe: " + errno_text(errno);
    return result;
  }
  fds.read_end = move_above_stdio(p[0]);
  fds.write_end = move_above_stdio(p[1]);
  if (fds.read_end < 0 || fds.write_end < 0) {
    result.error = "creating the exec status pipe: " + errno_text(errno);
    return result;
  }

  // Only the last-resort closer uses this bound: the soft limit, or the
  // kernel's default fs.nr_open when there is none.
  struct rlimit nofile;
  rlim_t max_fd = rlim_t(1) << 20;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
      nofile.rlim_cur != RLIM_INFINITY && nofile.rlim_cur < max_fd) {
    max_fd = nofile.rlim_cur;
  }
  sigset_t all, empty, saved;
  sigfillset(&all);
  sigemptyset(&empty);

  ChildPlan plan{command.path.c_str(), argv.data(), envp.data(), fds.devnull,
                 fds.write_end, getpid(), max_fd, closer, &empty};

  // Block every signal across fork so a host handler never runs in the
  // child before its dispositions are reset.
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  pid_t pid = fork();
  if (pid == 0) child_exec(plan);
  int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (pid < 0) {
    result.error = "fork: " + errno_text(fork_errno);
    return result;
  }
  // Also from this side, so the group exists whichever runs first. EACCES
  // once the child has exec'd is expected.
  setpgid(pid, pid);

  close(fds.write_end);
  fds.write_end = -1;
  // The pipe reaches EOF when execve succeeds (close-on-exec) or the child
  // dies; a report arrives only when a stage failed. (A process the host
  // forks at this very moment holds the write end too, until its own exec,
  // which can only delay the EOF.)
  ChildReport report{};
  size_t got = 0;
  while (got < sizeof report) {
    ssize_t n = read(fds.read_end, reinterpret_cast<char*>(&report) + got,
                     sizeof report - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += size_t(n);
  }
  if (got == 0) {
    result.pid = pid;
    return result;
  }
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (got < sizeof report) {
    result.error = "starting " + command.path + ": the child died before exec";
  } else {
    result.error = std::string(stage_name(report.stage)) + " " +
                   command.path + ": " + errno_text(report.err);
  }
  return result;
}

}  // namespace pkgpanda_module
