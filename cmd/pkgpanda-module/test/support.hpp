// Test doubles for the supervisor: a clock the test moves by hand, a sink
// that records events, temporary directories and the fake child's path.
#ifndef PKGPANDA_MODULE_TEST_SUPPORT_HPP
#define PKGPANDA_MODULE_TEST_SUPPORT_HPP

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "../supervisor.hpp"

namespace testing_support {

using pkgpanda_module::Clock;
using pkgpanda_module::Duration;
using pkgpanda_module::Event;

// kSafety bounds every blocking helper in real time so that a broken
// supervisor fails the test instead of hanging it. It is a guard, not an
// assertion about timing.
constexpr std::chrono::seconds kSafety{60};

// FakeClock only moves when advance() is called. Every wait with a
// deadline is recorded, in order, so a test can assert the exact delays
// the supervisor asked for and then let them pass.
class FakeClock final : public Clock {
 public:
  TimePoint now() override;
  bool wait_until(std::unique_lock<std::mutex>& lock,
                  std::condition_variable& cv, TimePoint deadline,
                  const std::function<bool()>& done) override;

  // next_wait blocks until the supervisor has begun a deadline wait not
  // returned before, and returns its length; false if none came within
  // kSafety.
  bool next_wait(Duration* length);
  // advance moves time forward and wakes the supervisor if it is waiting.
  void advance(Duration d);
  // waits_seen is how many deadline waits have begun.
  size_t waits_seen();

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  TimePoint now_{};
  std::vector<Duration> waits_;  // every deadline wait, in order
  size_t consumed_ = 0;
  std::mutex* waiter_mu_ = nullptr;
  std::condition_variable* waiter_cv_ = nullptr;
};

// RecordingSink keeps every event and lets a test wait for them.
class RecordingSink final : public pkgpanda_module::Sink {
 public:
  void record(const Event& event) override;
  // await blocks until `n` events of `kind` were recorded; false if not
  // within kSafety.
  bool await(Event::Kind kind, size_t n);
  std::vector<Event> events();
  std::vector<Event> of(Event::Kind kind);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;
};

// TempDir is a fresh directory, removed with its files at scope exit.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// fake_child is the path of the fake_child binary next to the test binary.
std::string fake_child();
// await_file polls for a file to exist (an OS-level state) up to kSafety
// and returns its content; false if it never appeared.
bool await_file(const std::string& path, std::string* content = nullptr);
// process_gone polls until `pid` no longer exists or is a zombie (reparented
// leftovers are reaped by init at its own pace); false if still running
// after kSafety.
bool process_gone(pid_t pid);
// no_children is true when this process has no child, running or zombie.
bool no_children();
// process_group reads a live process' group id from /proc; -1 if gone.
pid_t process_group(pid_t pid);

}  // namespace testing_support

#endif  // PKGPANDA_MODULE_TEST_SUPPORT_HPP
