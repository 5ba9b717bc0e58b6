#include "supervisor.hpp"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <system_error>
#include <utility>

#include "escape.hpp"

namespace pkgpanda_module {

Clock::TimePoint SteadyClock::now() { return std::chrono::steady_clock::now(); }

bool SteadyClock::wait_until(std::unique_lock<std::mutex>& lock,
                             std::condition_variable& cv, TimePoint deadline,
                             const std::function<bool()>& done) {
  if (deadline == TimePoint::max()) {
    cv.wait(lock, done);
    return true;
  }
  return cv.wait_until(lock, deadline, done);
}

namespace {

// format_duration renders a duration for a log line: "250ms", "1s",
// "4.07s", "1696s".
std::string format_duration(Duration d) {
  using namespace std::chrono;
  long long ms = duration_cast<milliseconds>(d).count();
  if (ms < 1000) return std::to_string(ms) + "ms";
  std::string out = std::to_string(ms / 1000);
  if (ms % 1000 != 0) {
    char frac[5];
    std::snprintf(frac, sizeof frac, ".%03lld", ms % 1000);
    std::string f = frac;
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  return out + "s";
}

// signal_name spells the signals a supervisor meets; others by number.
std::string signal_name(int sig) {
  switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGSEGV: return "SIGSEGV";
    case SIGPIPE: return "SIGPIPE";
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
  }
  return "signal " + std::to_string(sig);
}

// describe_status says how a child ended, from its wait status.
std::string describe_status(int status) {
  std::ostringstream out;
  if (status == -1) {
    out << "ended with an unknown status";
  } else if (WIFEXITED(status)) {
    out << "exited with status " << WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    out << "was killed by " << signal_name(WTERMSIG(status));
    if (WCOREDUMP(status)) out << " (core dumped)";
  } else {
    out << "ended with wait status " << status;
  }
  return out.str();
}

bool clean_exit(int status) {
  return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

Severity Event::severity() const {
  switch (kind) {
    case Kind::kSpawnFailed:
      return Severity::kError;
    case Kind::kExited:
      return clean_exit(wait_status) ? Severity::kInfo : Severity::kWarning;
    default:
      return Severity::kInfo;
  }
}

std::string Event::message() const {
  // detail may hold a parameter (the binary's path): escaped, it cannot
  // break the line.
  const std::string escaped = log_escape(detail);
  std::ostringstream out;
  switch (kind) {
    case Kind::kStarted:
      out << "started pkgpandad as pid " << pid << " (process group " << pid
          << "): " << escaped;
      break;
    case Kind::kSpawnFailed:
      out << "could not start pkgpandad: " << escaped;
      break;
    case Kind::kExited:
      out << "pkgpandad (pid " << pid << ") " << describe_status(wait_status)
          << " after running "
          << format_duration(ran_for);
      break;
    case Kind::kSignalSent: {
      out << "sent " << signal_name(signal)
          << " to pkgpandad's process group " << pid;
      if (!detail.empty()) out << " (" << escaped << ")";
      break;
    }
    case Kind::kRestartScheduled:
      out << "restarting pkgpandad in " << format_duration(delay);
      break;
    case Kind::kNotRestarting:
      out << "not restarting pkgpandad: " << escaped;
      break;
    case Kind::kStopped:
      out << "stopped supervising pkgpandad";
      break;
  }
  return out.str();
}

Duration next_backoff(Duration previous, const SupervisorConfig& config) {
  if (previous <= Duration::zero()) return config.backoff_initial;
  // Doubling cannot overflow: options cap every duration far below.
  return std::min(previous * 2, config.backoff_max);
}

Supervisor::Supervisor(SupervisorConfig config, Sink& sink, Clock& clock)
    : config_(std::move(config)), sink_(sink), clock_(clock) {}

Supervisor::~Supervisor() { stop(); }

void Supervisor::start() {
  std::lock_guard<std::mutex> guard(lifecycle_mu_);
  if (thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_requested_) return;
  }
  thread_ = std::thread([this] { run(); });
}

void Supervisor::stop() {
  std::lock_guard<std::mutex> guard(lifecycle_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_requested_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Supervisor::emit(Event event) { sink_.record(event); }

void Supervisor::run() {
  Duration backoff = Duration::zero();
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_requested_) break;
    }
    const Clock::TimePoint started = clock_.now();
    SpawnResult spawned = spawn_in_new_group(config_.command);
    Duration ran_for = Duration::zero();
    int status = -1;
    if (!spawned.error.empty()) {
      Event e(Event::Kind::kSpawnFailed);
      e.detail = spawned.error;
      emit(e);
    } else {
      Event e(Event::Kind::kStarted);
      e.pid = spawned.pid;
      e.detail = config_.command.path;
      emit(e);
      status = supervise_child(spawned.pid);
      ran_for = std::chrono::duration_cast<Duration>(clock_.now() - started);
      Event x(Event::Kind::kExited);
      x.pid = spawned.pid;
      x.wait_status = status;
      x.ran_for = ran_for;
      emit(x);
    }

    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_requested_) break;
    }
    const char* no_restart = nullptr;
    if (config_.restart == RestartPolicy::kNever) {
      no_restart = "the restart policy is never";
    } else if (config_.restart == RestartPolicy::kOnFailure &&
               clean_exit(status)) {
      no_restart = "it exited with status 0 and the restart policy is on-failure";
    }
    if (no_restart != nullptr) {
      Event e(Event::Kind::kNotRestarting);
      e.detail = no_restart;
      emit(e);
      std::unique_lock<std::mutex> lock(mu_);
      clock_.wait_until(lock, cv_, Clock::TimePoint::max(),
                        [this] { return stop_requested_; });
      break;
    }

    if (ran_for >= config_.backoff_reset) backoff = Duration::zero();
    backoff = next_backoff(backoff, config_);
    Event r(Event::Kind::kRestartScheduled);
    r.delay = backoff;
    emit(r);
    std::unique_lock<std::mutex> lock(mu_);
    if (clock_.wait_until(lock, cv_, clock_.now() + backoff,
                          [this] { return stop_requested_; })) {
      break;
    }
  }
  emit(Event(Event::Kind::kStopped));
}

int Supervisor::supervise_child(pid_t pid) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    child_exited_ = false;
    child_lost_ = false;
  }
  // The waiter blocks until the child exits but leaves it unreaped
  // (WNOWAIT): while it is a zombie its pid, and so its process group id,
  // cannot be reused, which makes killing the rest of the group safe.
  std::thread waiter;
  try {
    waiter = std::thread([this, pid] {
      siginfo_t info;
      int rc;
      while ((rc = waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT)) != 0 &&
             errno == EINTR) {
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        child_exited_ = true;
        // ECHILD: someone else reaped it (a host that ignores SIGCHLD), so
        // its pid, and its group id, may already belong to another process.
        child_lost_ = rc != 0;
      }
      cv_.notify_all();
    });
  } catch (const std::system_error& e) {
    // No thread to watch the child with: do not leave it unsupervised.
    Event f(Event::Kind::kSpawnFailed);
    f.detail = std::string("watching pid ") + std::to_string(pid) +
               " needs a thread: " + e.what() + "; killing it";
    emit(f);
    kill(-pid, SIGKILL);
    int status = -1;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
  }

  {
    std::unique_lock<std::mutex> lock(mu_);
    clock_.wait_until(lock, cv_, Clock::TimePoint::max(),
                      [this] { return child_exited_ || stop_requested_; });
    if (!child_exited_) terminate_locked(lock, pid);
  }
  waiter.join();
  bool lost;
  {
    std::lock_guard<std::mutex> lock(mu_);
    lost = child_lost_;
  }
  if (lost) return -1;

  // Anything the child left in its group goes with it, before the pid is
  // released by reaping.
  kill(-pid, SIGKILL);

  int status = -1;
  pid_t r;
  while ((r = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  if (r != pid) status = -1;
  return status;
}

void Supervisor::terminate_locked(std::unique_lock<std::mutex>& lock,
                                  pid_t pid) {
  signal_group(pid, SIGTERM);
  const Clock::TimePoint deadline = clock_.now() + config_.stop_grace;
  if (clock_.wait_until(lock, cv_, deadline, [this] { return child_exited_; })) {
    return;
  }
  signal_group(pid, SIGKILL);
  clock_.wait_until(lock, cv_, Clock::TimePoint::max(),
                    [this] { return child_exited_; });
}

void Supervisor::signal_group(pid_t pid, int sig) {
  Event e(Event::Kind::kSignalSent);
  e.pid = pid;
  e.signal = sig;
  if (kill(-pid, sig) != 0) {
    // The child left its group (setsid/setpgid): signal the child itself.
    int err = errno;
    kill(pid, sig);
    e.detail = "signalling the group: " +
               std::error_code(err, std::generic_category()).message() +
               "; signalled the pid alone";
  }
  if (sig == SIGKILL) {
    e.detail = e.detail.empty()
                   ? "still running " + format_duration(config_.stop_grace) +
                         " after SIGTERM"
                   : e.detail;
  }
  emit(e);
}

}  // namespace pkgpanda_module
