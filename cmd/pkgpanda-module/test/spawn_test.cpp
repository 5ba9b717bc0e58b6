// spawn_in_new_group tests: what the child starts with, seen from inside.
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../spawn.hpp"
#include "harness.hpp"
#include "support.hpp"

using namespace pkgpanda_module;
using namespace testing_support;

namespace {

std::vector<std::string> lines_with(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, prefix.size(), prefix) == 0) out.push_back(line.substr(prefix.size()));
  }
  return out;
}

std::string field(const std::string& text, const std::string& name) {
  std::vector<std::string> v = lines_with(text, name + " ");
  return v.empty() ? "" : v[0];
}

// inspect_child spawns the fake child in inspect mode from a thread whose
// state a careless spawn would leak: an inheritable descriptor, an ignored
// and a blocked signal.
std::string inspect_child(FdCloser closer, pid_t* pid_out) {
  TempDir dir;
  Command c;
  c.path = fake_child();
  c.argv = {"pkgpandad-as-argv0", "inspect", dir.path()};
  c.env = {"A=1", "LIBPROCESS_PORT=5052"};

  int leak[2];
  REQUIRE(pipe(leak) == 0);  // no O_CLOEXEC: the child would inherit both
  // And one far above every descriptor spawn opens for itself.
  int high = fcntl(leak[1], F_DUPFD, 300);
  REQUIRE(high >= 300);
  // This process' stdin becomes a pipe for the spawn, so a child that
  // inherited it would show it.
  int saved_stdin = dup(0);
  REQUIRE(saved_stdin >= 0);
  REQUIRE(dup2(leak[0], 0) == 0);
  struct sigaction ign, old_usr1;
  ign = {};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGUSR1, &ign, &old_usr1);
  // Signal 32 is reserved by glibc, whose sigaction() cannot reset it; ask
  // the kernel to ignore it (an all-zero sigaction but for the handler,
  // which comes first on every architecture).
  alignas(8) unsigned char ign32[128] = {}, old32[128] = {};
  const uintptr_t sig_ign = uintptr_t(SIG_IGN);
  std::memcpy(ign32, &sig_ign, sizeof sig_ign);
  REQUIRE(syscall(SYS_rt_sigaction, 32, ign32, old32, (NSIG - 1) / 8) == 0);
  sigset_t usr2, old_mask;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &usr2, &old_mask);

  SpawnResult r = spawn_in_new_group(c, closer);

  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  sigaction(SIGUSR1, &old_usr1, nullptr);
  syscall(SYS_rt_sigaction, 32, old32, nullptr, (NSIG - 1) / 8);
  dup2(saved_stdin, 0);
  close(saved_stdin);
  close(leak[0]);
  close(leak[1]);
  close(high);

  CHECK_EQ(r.error, std::string());
  REQUIRE(r.pid > 0);
  int status;
  REQUIRE(waitpid(r.pid, &status, 0) == r.pid);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  *pid_out = r.pid;
  std::string report;
  REQUIRE(await_file(dir.file("inspect"), &report));
  return report;
}

void check_clean_child(FdCloser closer) {
  pid_t pid;
  std::string report = inspect_child(closer, &pid);
  CHECK_EQ(field(report, "pid"), std::to_string(pid));
  CHECK_EQ(field(report, "pgid"), std::to_string(pid));
  CHECK_EQ(field(report, "sigblk"), std::string("0000000000000000"));
  CHECK_EQ(field(report, "sigign"), std::string("0000000000000000"));
  CHECK_EQ(field(report, "fds"), std::string("0 1 2"));
  CHECK_EQ(field(report, "stdin"), std::string("/dev/null"));
  std::vector<std::string> args = lines_with(report, "arg ");
  CHECK_EQ(args.size(), size_t(3));
  if (args.size() == 3) CHECK_EQ(args[0], std::string("pkgpandad-as-argv0"));
  std::vector<std::string> env = lines_with(report, "env ");
  CHECK_EQ(env.size(), size_t(2));
  if (env.size() == 2) {
    CHECK_EQ(env[0], std::string("A=1"));
    CHECK_EQ(env[1], std::string("LIBPROCESS_PORT=5052"));
  }
  CHECK(no_children());
}

}  // namespace

TEST(ChildStartsCleanWithCloseRange) { check_clean_child(FdCloser::kAuto); }
TEST(ChildStartsCleanWithProcSelfFd) { check_clean_child(FdCloser::kProcSelfFd); }
TEST(ChildStartsCleanWithBruteForceClose) { check_clean_child(FdCloser::kBruteForce); }

TEST(MissingBinaryIsAnErrorAndNoChildIsLeft) {
  Command c;
  c.path = "/nonexistent/pkgpandad";
  c.argv = {c.path};
  SpawnResult r = spawn_in_new_group(c);
  CHECK_EQ(r.pid, pid_t(-1));
  CHECK_EQ(r.error, std::string("executing /nonexistent/pkgpandad: No such file or directory"));
  CHECK(no_children());
}

TEST(NonExecutableIsAnError) {
  TempDir dir;
  std::string path = dir.file("not-executable");
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  close(fd);
  Command c;
  c.path = path;
  c.argv = {path};
  SpawnResult r = spawn_in_new_group(c);
  CHECK_EQ(r.error, "executing " + path + ": Permission denied");
  CHECK(no_children());
}

TEST(RelativePathIsRefused) {
  Command c;
  c.path = "pkgpandad";
  c.argv = {c.path};
  SpawnResult r = spawn_in_new_group(c);
  CHECK_EQ(r.error, std::string("the binary path \"pkgpandad\" is not absolute"));
  CHECK(no_children());
}

TEST(ChildGetsTermWhenSpawningThreadDies) {
  // What happens to pkgpandad when the agent dies without destroying the
  // module: the thread that started it is gone, so the kernel sends
  // SIGTERM (PR_SET_PDEATHSIG) and pkgpandad drains and exits.
  TempDir dir;
  Command c;
  c.path = fake_child();
  c.argv = {c.path, "serve", dir.path()};
  SpawnResult r;
  std::thread spawner([&] { r = spawn_in_new_group(c); });
  spawner.join();
  REQUIRE(r.error.empty());
  // Without the death signal the child would serve forever and this wait
  // would hang until the harness' alarm.
  int status;
  REQUIRE(waitpid(r.pid, &status, 0) == r.pid);
  // SIGTERM either met the child's handler (exit 0) or came before it was
  // installed (killed by SIGTERM).
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
        (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM));
  CHECK(no_children());
}
