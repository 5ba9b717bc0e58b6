// Supervision of pkgpandad: start it in its own process group, restart it
// with exponential backoff when it exits, stop it with SIGTERM and then
// SIGKILL. Plain C++17 and POSIX; no Mesos headers, so it builds and is
// tested with nothing but a C++ compiler. The Mesos glue
// (pkgpanda_module.cpp) maps the Sink onto glog.
#ifndef PKGPANDA_MODULE_SUPERVISOR_HPP
#define PKGPANDA_MODULE_SUPERVISOR_HPP

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "spawn.hpp"

namespace pkgpanda_module {

using Duration = std::chrono::nanoseconds;

// Clock is the supervisor's notion of time: now() for measuring how long a
// child ran and wait_until() for every wait that has a deadline (backoff,
// stop grace). Tests replace it to drive time by hand.
class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;

  // now returns the current time.
  virtual TimePoint now() = 0;

  // wait_until blocks, with `lock` held on entry and on return, until
  // done() is true or now() reaches `deadline` (TimePoint::max() waits
  // for done() only). `cv` is notified, under `lock`, whenever done() may
  // have become true. Returns done().
  virtual bool wait_until(std::unique_lock<std::mutex>& lock,
                          std::condition_variable& cv, TimePoint deadline,
                          const std::function<bool()>& done) = 0;
};

// SteadyClock is the real Clock: std::chrono::steady_clock.
class SteadyClock final : public Clock {
 public:
  TimePoint now() override;
  bool wait_until(std::unique_lock<std::mutex>& lock,
                  std::condition_variable& cv, TimePoint deadline,
                  const std::function<bool()>& done) override;
};

// Severity is how loud an Event is in the log.
enum class Severity { kInfo, kWarning, kError };

// Event is one thing the supervisor did or saw; the Sink receives each.
struct Event {
  enum class Kind {
    kStarted,          // pid: the child is running (exec succeeded)
    kSpawnFailed,      // detail: why it could not be started
    kExited,           // pid, wait_status, ran_for
    kSignalSent,       // pid (group), signal
    kRestartScheduled, // delay: the next start is this far away
    kNotRestarting,    // detail: the restart policy ends supervision
    kStopped,          // supervision is over; no child is left
  };

  explicit Event(Kind k) : kind(k) {}

  Kind kind;
  pid_t pid = 0;
  int wait_status = 0;  // as from waitpid; -1 when it could not be read
  int signal = 0;
  Duration ran_for{0};
  Duration delay{0};
  std::string detail;

  // severity says how loud the event is: failed starts are errors,
  // exits other than with status 0 warnings.
  Severity severity() const;
  // message renders the event as one log line; detail is escaped with
  // log_escape.
  std::string message() const;
};

// Sink receives the supervisor's events, one at a time, from the
// supervisor's thread. The Mesos glue logs them with glog.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void record(const Event& event) = 0;
};

// RestartPolicy says when an exited child is started again.
enum class RestartPolicy {
  kAlways,     // after every exit, and after a failed start
  kOnFailure,  // unless it exited with status 0
  kNever,      // run once
};

// SupervisorConfig is everything the supervisor needs; options.hpp builds
// it from the module's parameters with validated defaults.
struct SupervisorConfig {
  Command command;
  RestartPolicy restart = RestartPolicy::kAlways;
  // The first restart waits backoff_initial; each further one doubles the
  // wait up to backoff_max. A child that ran at least backoff_reset
  // starts the sequence over.
  Duration backoff_initial = std::chrono::seconds(1);
  Duration backoff_max = std::chrono::seconds(60);
  Duration backoff_reset = std::chrono::minutes(10);
  // On stop, how long after SIGTERM the process group gets SIGKILL.
  Duration stop_grace = std::chrono::seconds(30);
};

// Supervisor runs one child per SupervisorConfig on its own thread.
// start() begins, stop() (and the destructor) ends supervision and returns
// once the child and its process group are gone and the child reaped.
class Supervisor {
 public:
  Supervisor(SupervisorConfig config, Sink& sink, Clock& clock);
  ~Supervisor();

  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // start launches the supervision thread; the first start of the child
  // happens there at once. Calling it twice does nothing. Throws
  // std::system_error when no thread can be created.
  void start();

  // stop ends supervision: a running child's process group gets SIGTERM,
  // then SIGKILL after stop_grace. Blocks until the child is reaped.
  // Idempotent.
  void stop();

 private:
  void run();
  // supervise_child waits for `pid` to exit (or for stop, which then
  // terminates it), kills what is left of its group, reaps it and returns
  // its wait status.
  int supervise_child(pid_t pid);
  void terminate_locked(std::unique_lock<std::mutex>& lock, pid_t pid);
  void signal_group(pid_t pid, int sig);
  void emit(Event event);

  const SupervisorConfig config_;
  Sink& sink_;
  Clock& clock_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_requested_ = false;  // guarded by mu_
  bool child_exited_ = false;    // guarded by mu_
  bool child_lost_ = false;      // guarded by mu_: reaped by someone else

  std::mutex lifecycle_mu_;  // serialises start() and stop()
  std::thread thread_;
};

// next_backoff is the backoff rule in one place: given the delay used for
// the previous restart (zero before the first), returns the next one.
Duration next_backoff(Duration previous, const SupervisorConfig& config);

}  // namespace pkgpanda_module

#endif  // PKGPANDA_MODULE_SUPERVISOR_HPP
