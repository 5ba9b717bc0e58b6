// Starting a child in its own process group from a multithreaded process
// (the Mesos agent): fork + execve with only async-signal-safe calls in
// between.
#ifndef PKGPANDA_MODULE_SPAWN_HPP
#define PKGPANDA_MODULE_SPAWN_HPP

#include <sys/types.h>

#include <string>
#include <vector>

namespace pkgpanda_module {

// Command is what to execute: an absolute path, the full argv (argv[0]
// included) and the complete environment as KEY=VALUE strings.
struct Command {
  std::string path;
  std::vector<std::string> argv;
  std::vector<std::string> env;
};

// FdCloser selects how the child gets rid of inherited descriptors above
// stderr. kAuto uses close_range(2) and falls back to the others on older
// kernels; tests force each fallback.
enum class FdCloser { kAuto, kProcSelfFd, kBruteForce };

// SpawnResult is a started child's pid, or why there is none.
struct SpawnResult {
  pid_t pid = -1;
  std::string error;  // empty on success
};

// spawn_in_new_group starts `command` as the leader of a new process group.
// In the child: every signal disposition is reset to default and the
// signal mask emptied, stdin is /dev/null, stdout and stderr are
// inherited (or /dev/null when closed), every other descriptor is closed,
// and on Linux the child gets SIGTERM if the calling thread dies. The call
// returns once execve has succeeded or failed; a failure (such as a
// missing binary) is reported in `error` and the failed child is reaped.
SpawnResult spawn_in_new_group(const Command& command,
                               FdCloser closer = FdCloser::kAuto);

}  // namespace pkgpanda_module

#endif  // PKGPANDA_MODULE_SPAWN_HPP
