// Supervisor tests: real child processes (the fake_child binary), a clock
// moved by hand, events recorded by a sink.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <future>
#include <string>
#include <vector>

#include "../supervisor.hpp"
#include "harness.hpp"
#include "support.hpp"

using namespace pkgpanda_module;
using namespace testing_support;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

namespace {

SupervisorConfig config_for(const std::string& mode, const TempDir& dir,
                            const std::string& extra = "") {
  SupervisorConfig c;
  c.command.path = fake_child();
  c.command.argv = {c.command.path, mode, dir.path()};
  if (!extra.empty()) c.command.argv.push_back(extra);
  c.command.env = {"PATH=/usr/bin:/bin"};
  c.backoff_initial = seconds(1);
  c.backoff_max = seconds(8);
  c.backoff_reset = minutes(10);
  c.stop_grace = seconds(5);
  return c;
}

std::vector<Duration> delays(RecordingSink& sink) {
  std::vector<Duration> out;
  for (const Event& e : sink.of(Event::Kind::kRestartScheduled)) out.push_back(e.delay);
  return out;
}

bool sent(RecordingSink& sink, int sig) {
  for (const Event& e : sink.of(Event::Kind::kSignalSent)) {
    if (e.signal == sig) return true;
  }
  return false;
}

// stop_in_background runs stop() on another thread: with a fake clock a
// stop that needs the grace to pass blocks until the test advances it.
std::future<void> stop_in_background(Supervisor& s) {
  return std::async(std::launch::async, [&s] { s.stop(); });
}

std::string to_string(const std::vector<Duration>& v) {
  std::string s;
  for (Duration d : v) {
    s += std::to_string(std::chrono::duration_cast<milliseconds>(d).count()) + "ms ";
  }
  return s;
}

}  // namespace

TEST(CrashingChildIsRestartedWithExponentialBackoff) {
  TempDir dir;
  FakeClock clock;
  RecordingSink sink;
  Supervisor s(config_for("exit", dir, "3"), sink, clock);
  s.start();

  std::vector<Duration> waited;
  for (int i = 0; i < 6; ++i) {
    Duration d;
    REQUIRE(clock.next_wait(&d));
    waited.push_back(d);
    clock.advance(d);
  }
  REQUIRE(sink.await(Event::Kind::kStarted, 7));
  s.stop();

  const std::vector<Duration> want = {seconds(1), seconds(2), seconds(4),
                                      seconds(8), seconds(8), seconds(8)};
  CHECK_EQ(to_string(waited), to_string(want));
  std::vector<Duration> announced = delays(sink);
  announced.resize(6);
  CHECK_EQ(to_string(announced), to_string(want));
  // The six runs before stop exited on their own (the seventh may have met
  // the stop's SIGTERM).
  std::vector<Event> exits = sink.of(Event::Kind::kExited);
  REQUIRE(exits.size() >= 6);
  for (size_t i = 0; i < 6; ++i) {
    CHECK(WIFEXITED(exits[i].wait_status) && WEXITSTATUS(exits[i].wait_status) == 3);
  }
  // The first start does not wait: it precedes every restart delay.
  std::vector<Event> all = sink.events();
  REQUIRE(!all.empty());
  CHECK(all.front().kind == Event::Kind::kStarted);
  CHECK(sink.of(Event::Kind::kStopped).size() == 1);
  CHECK(no_children());
}

TEST(StableRunResetsBackoff) {
  TempDir dir;
  FakeClock clock;
  RecordingSink sink;
  Supervisor s(config_for("serve", dir), sink, clock);
  s.start();

  // Two quick crashes: 1s, then 2s.
  for (size_t n = 1; n <= 2; ++n) {
    REQUIRE(sink.await(Event::Kind::kStarted, n));
    kill(sink.of(Event::Kind::kStarted).back().pid, SIGKILL);
    Duration d;
    REQUIRE(clock.next_wait(&d));
    clock.advance(d);
  }
  // The third run lasts the reset period before it crashes.
  REQUIRE(sink.await(Event::Kind::kStarted, 3));
  clock.advance(minutes(10));
  kill(sink.of(Event::Kind::kStarted).back().pid, SIGKILL);
  Duration d;
  REQUIRE(clock.next_wait(&d));
  s.stop();

  CHECK_EQ(to_string(delays(sink)), to_string({seconds(1), seconds(2), seconds(1)}));
  std::vector<Event> exits = sink.of(Event::Kind::kExited);
  REQUIRE(exits.size() == 3);
  CHECK(exits[2].ran_for >= minutes(10));
  CHECK(WIFSIGNALED(exits[2].wait_status) && WTERMSIG(exits[2].wait_status) == SIGKILL);
  CHECK(no_children());
}

TEST(StopSendsTermAndChildExits) {
  TempDir dir;
  FakeClock clock;
  RecordingSink sink;
  Supervisor s(config_for("serve", dir), sink, clock);
  s.start();
  REQUIRE(await_file(dir.file("ready")));

  // The clock never moves: the child must go on SIGTERM alone.
  auto stopped = stop_in_background(s);
  REQUIRE(stopped.wait_for(kSafety) == std::future_status::ready);

  CHECK(await_file(dir.file("term")));
  CHECK(sent(sink, SIGTERM));
  CHECK(!sent(sink, SIGKILL));
  std::vector<Event> exits = sink.of(Event::Kind::kExited);
  REQUIRE(exits.size() == 1);
  CHECK(WIFEXITED(exits[0].wait_status) && WEXITSTATUS(exits[0].wait_status) == 0);
  CHECK(sink.of(Event::Kind::kRestartScheduled).empty());
  CHECK(no_children());
}

TEST(ChildIgnoringTermIsKilledWhenGraceEnds) {
  TempDir dir;
  FakeClock clock;
  RecordingSink sink;
  Supervisor s(config_for("ignore-term", dir), sink, clock);
  s.start();
  std::string ready;
  REQUIRE(await_file(dir.file("ready"), &ready));
  pid_t pid = pid_t(std::stol(ready));

  auto stopped = stop_in_background(s);
  Duration grace;
  REQUIRE(clock.next_wait(&grace));
  CHECK_EQ(std::chrono::duration_cast<milliseconds>(grace).count(), 5000);
  // The child got SIGTERM, ignored it, and is still running: no SIGKILL
  // before the grace is over.
  REQUIRE(await_file(dir.file("term")));
  CHECK(kill(pid, 0) == 0);
  CHECK(sent(sink, SIGTERM));
  CHECK(!sent(sink, SIGKILL));

  clock.advance(grace);
  REQUIRE(stopped.wait_for(kSafety) == std::future_status::ready);
  CHECK(sent(sink, SIGKILL));
  std::vector<Event> exits = sink.of(Event::Kind::kExited);
  REQUIRE(exits.size() == 1);
  CHECK(WIFSIGNALED(exits[0].wait_status) && WTERMSIG(exits[0].wait_status) == SIGKILL);
  CHECK(no_children());
}

TEST(StopKillsWhatTheChildLeftInItsGroup) {
  TempDir dir;
  FakeClock clock;
  RecordingSink sink;
  Supervisor s(config_for("straggler", dir), sink, clock);
  s.start();
  std::string ready, grandchild;
  REQUIRE(await_file(dir.file("ready"), &ready));
  REQUIRE(await_file(dir.file("grandchild"), &grandchild));
  pid_t pid = pid_t(std::stol(ready));
  pid_t orphan = pid_t(std::stol(grandchild));
  CHECK_EQ(process_group(pid), pid);
  CHECK_EQ(process_group(orphan), pid);

  auto stopped = stop_in_background(s);
  REQUIRE(stopped.wait_for(kSafety) == std::future_status::ready);
  // SIGTERM went to the whole group; the child left on it, the grandchild,
  // which ignores it, went with the group's SIGKILL.
  CHECK(await_file(dir.file("grandchild-term")));
  CHECK(!sent(sink, SIGKILL));
  CHECK(process_gone(orphan));
  CHECK(no_children());
}

TEST(MissingBinaryIsReportedAndRetriedWithBackoff) {
  TempDir dir;
  FakeClock clock;
  RecordingSink sink;
  SupervisorConfig c = config_for("serve", dir);
  c.command.path = dir.file("no-such-pkgpandad");
  c.command.argv[0] = c.command.path;
  Supervisor s(c, sink, clock);
  s.start();

  Duration first, second;
  REQUIRE(clock.next_wait(&first));
  clock.advance(first);
  REQUIRE(clock.next_wait(&second));
  s.stop();

  CHECK_EQ(to_string({first, second}), to_string({seconds(1), seconds(2)}));
  std::vector<Event> failed = sink.of(Event::Kind::kSpawnFailed);
  REQUIRE(failed.size() == 2);
  CHECK_EQ(failed[0].message(), "could not start pkgpandad: executing " +
                                    c.command.path + ": No such file or directory");
  CHECK(failed[0].severity() == Severity::kError);
  CHECK(sink.of(Event::Kind::kStarted).empty());
  CHECK(no_children());
}

TEST(OnFailurePolicyLeavesCleanExitAlone) {
  TempDir dir;
  FakeClock clock;
  RecordingSink sink;
  SupervisorConfig c = config_for("exit", dir, "0");
  c.restart = RestartPolicy::kOnFailure;
  Supervisor s(c, sink, clock);
  s.start();
  REQUIRE(sink.await(Event::Kind::kNotRestarting, 1));
  s.stop();
  CHECK_EQ(sink.of(Event::Kind::kStarted).size(), size_t(1));
  CHECK(sink.of(Event::Kind::kRestartScheduled).empty());
  CHECK_EQ(clock.waits_seen(), size_t(0));
  CHECK(no_children());
}

TEST(OnFailurePolicyRestartsFailure) {
  TempDir dir;
  FakeClock clock;
  RecordingSink sink;
  SupervisorConfig c = config_for("exit", dir, "1");
  c.restart = RestartPolicy::kOnFailure;
  Supervisor s(c, sink, clock);
  s.start();
  Duration d;
  REQUIRE(clock.next_wait(&d));
  s.stop();
  CHECK(sink.of(Event::Kind::kNotRestarting).empty());
  CHECK_EQ(delays(sink).size(), size_t(1));
  CHECK(no_children());
}

TEST(NeverPolicyRunsOnce) {
  TempDir dir;
  FakeClock clock;
  RecordingSink sink;
  SupervisorConfig c = config_for("exit", dir, "4");
  c.restart = RestartPolicy::kNever;
  Supervisor s(c, sink, clock);
  s.start();
  REQUIRE(sink.await(Event::Kind::kNotRestarting, 1));
  s.stop();
  CHECK_EQ(sink.of(Event::Kind::kStarted).size(), size_t(1));
  CHECK(no_children());
}

TEST(StopDuringBackoffDoesNotRestart) {
  TempDir dir;
  FakeClock clock;
  RecordingSink sink;
  Supervisor s(config_for("exit", dir, "1"), sink, clock);
  s.start();
  Duration d;
  REQUIRE(clock.next_wait(&d));
  s.stop();  // the clock never reaches the restart
  CHECK_EQ(sink.of(Event::Kind::kStarted).size(), size_t(1));
  CHECK_EQ(sink.of(Event::Kind::kStopped).size(), size_t(1));
  CHECK(no_children());
}

TEST(StopBeforeStartAndTwiceIsHarmless) {
  TempDir dir;
  FakeClock clock;
  RecordingSink sink;
  Supervisor s(config_for("serve", dir), sink, clock);
  s.stop();
  s.start();  // after stop: supervision never begins
  s.stop();
  CHECK(sink.events().empty());
  CHECK(no_children());
}

TEST(RealClockStopsIgnoringChildAfterGrace) {
  // The production clock end to end, with a short grace.
  TempDir dir;
  SteadyClock clock;
  RecordingSink sink;
  SupervisorConfig c = config_for("ignore-term", dir);
  c.stop_grace = milliseconds(200);
  {
    Supervisor s(c, sink, clock);
    s.start();
    REQUIRE(await_file(dir.file("ready")));
  }  // the destructor stops
  // (Whether the child's handler ran before SIGKILL depends on scheduling;
  // ChildIgnoringTermIsKilledWhenGraceEnds checks that with a fake clock.)
  CHECK(sent(sink, SIGTERM));
  CHECK(sent(sink, SIGKILL));
  CHECK(no_children());
}

TEST(EventMessagesReadWell) {
  Event x(Event::Kind::kExited);
  x.pid = 42;
  x.wait_status = 3 << 8;  // exited with status 3
  x.ran_for = milliseconds(1500);
  CHECK_EQ(x.message(), std::string("pkgpandad (pid 42) exited with status 3 after running 1.5s"));
  CHECK(x.severity() == Severity::kWarning);
  x.wait_status = SIGSEGV;  // killed by the signal, no core
  x.ran_for = milliseconds(250);
  CHECK_EQ(x.message(), std::string("pkgpandad (pid 42) was killed by SIGSEGV after running 250ms"));
  x.wait_status = 0;
  x.ran_for = seconds(1696);
  CHECK_EQ(x.message(), std::string("pkgpandad (pid 42) exited with status 0 after running 1696s"));
  CHECK(x.severity() == Severity::kInfo);
  Event k(Event::Kind::kSignalSent);
  k.pid = 42;
  k.signal = SIGKILL;
  k.detail = "still running 30s after SIGTERM";
  CHECK_EQ(k.message(), std::string("sent SIGKILL to pkgpandad's process group 42 (still running 30s after SIGTERM)"));
  Event r(Event::Kind::kRestartScheduled);
  r.delay = seconds(4);
  CHECK_EQ(r.message(), std::string("restarting pkgpandad in 4s"));
}

TEST(EventMessagesEscapeTheirDetail) {
  // The binary's path is a parameter: a newline in it stays in the line.
  Event s(Event::Kind::kStarted);
  s.pid = 42;
  s.detail = "/opt/bin/pkgpandad\nE1202 forged";
  CHECK_EQ(s.message(), std::string("started pkgpandad as pid 42 (process group 42): "
                                    "/opt/bin/pkgpandad\\x0aE1202 forged"));
  Event f(Event::Kind::kSpawnFailed);
  f.detail = "executing /opt/bin/pkgpandad\r\nE1202 forged: No such file or directory";
  CHECK_EQ(f.message(), std::string("could not start pkgpandad: executing /opt/bin/pkgpandad"
                                    "\\x0d\\x0aE1202 forged: No such file or directory"));
}

TEST(NextBackoffDoublesUpToMax) {
  SupervisorConfig c;
  c.backoff_initial = milliseconds(300);
  c.backoff_max = seconds(1);
  CHECK(next_backoff(Duration::zero(), c) == milliseconds(300));
  CHECK(next_backoff(milliseconds(300), c) == milliseconds(600));
  CHECK(next_backoff(milliseconds(600), c) == seconds(1));
  CHECK(next_backoff(seconds(1), c) == seconds(1));
}

TEST(HostIgnoringSigchldLosesTheStatusNotTheSupervisor) {
  // A host that ignores SIGCHLD has its children reaped by the kernel: the
  // supervisor still sees the exit, reports the status as unknown and
  // restarts as usual.
  TempDir dir;
  FakeClock clock;
  RecordingSink sink;
  struct sigaction ign, old;
  ign = {};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGCHLD, &ign, &old);
  {
    Supervisor s(config_for("exit", dir, "3"), sink, clock);
    s.start();
    Duration d;
    bool waited = clock.next_wait(&d);
    s.stop();
    CHECK(waited);
  }
  sigaction(SIGCHLD, &old, nullptr);
  std::vector<Event> exits = sink.of(Event::Kind::kExited);
  REQUIRE(!exits.empty());
  CHECK_EQ(exits[0].wait_status, -1);
  CHECK(exits[0].message().find(") ended with an unknown status after running") !=
        std::string::npos);
  CHECK(no_children());
}
