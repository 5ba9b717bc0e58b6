#include "support.hpp"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace testing_support {

Clock::TimePoint FakeClock::now() {
  std::lock_guard<std::mutex> l(mu_);
  return now_;
}

bool FakeClock::wait_until(std::unique_lock<std::mutex>& lock,
                           std::condition_variable& cv, TimePoint deadline,
                           const std::function<bool()>& done) {
  {
    std::lock_guard<std::mutex> l(mu_);
    waiter_mu_ = lock.mutex();
    waiter_cv_ = &cv;
    if (deadline != TimePoint::max()) waits_.push_back(deadline - now_);
  }
  changed_.notify_all();
  bool result;
  for (;;) {
    if (done()) {
      result = true;
      break;
    }
    // advance() changes now_ only while holding the waiter's mutex, which
    // this thread holds here, so no advance can slip between this check
    // and cv.wait.
    if (now() >= deadline) {
      result = false;
      break;
    }
    cv.wait(lock);
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    waiter_mu_ = nullptr;
    waiter_cv_ = nullptr;
  }
  return result;
}

bool FakeClock::next_wait(Duration* length) {
  std::unique_lock<std::mutex> l(mu_);
  if (!changed_.wait_for(l, kSafety, [this] { return waits_.size() > consumed_; })) {
    return false;
  }
  *length = waits_[consumed_++];
  return true;
}

size_t FakeClock::waits_seen() {
  std::lock_guard<std::mutex> l(mu_);
  return waits_.size();
}

void FakeClock::advance(Duration d) {
  std::mutex* m;
  std::condition_variable* cv;
  {
    std::lock_guard<std::mutex> l(mu_);
    m = waiter_mu_;
    cv = waiter_cv_;
  }
  if (m == nullptr) {
    std::lock_guard<std::mutex> l(mu_);
    now_ += d;
    return;
  }
  // The waiter's mutex belongs to the supervisor, which outlives the test's
  // calls; holding it orders this advance against the waiter's check.
  std::lock_guard<std::mutex> g(*m);
  {
    std::lock_guard<std::mutex> l(mu_);
    now_ += d;
  }
  cv->notify_all();
}

void RecordingSink::record(const Event& event) {
  {
    std::lock_guard<std::mutex> l(mu_);
    events_.push_back(event);
  }
  cv_.notify_all();
}

bool RecordingSink::await(Event::Kind kind, size_t n) {
  std::unique_lock<std::mutex> l(mu_);
  return cv_.wait_for(l, kSafety, [&] {
    size_t c = 0;
    for (const Event& e : events_) c += e.kind == kind;
    return c >= n;
  });
}

std::vector<Event> RecordingSink::events() {
  std::lock_guard<std::mutex> l(mu_);
  return events_;
}

std::vector<Event> RecordingSink::of(Event::Kind kind) {
  std::vector<Event> out;
  for (const Event& e : events()) {
    if (e.kind == kind) out.push_back(e);
  }
  return out;
}

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                     "/pkgpanda-module-test.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  DIR* d = opendir(path_.c_str());
  if (d != nullptr) {
    while (struct dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") unlink((path_ + "/" + n).c_str());
    }
    closedir(d);
  }
  rmdir(path_.c_str());
}

std::string fake_child() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw std::runtime_error("readlink /proc/self/exe failed");
  std::string self(buf, size_t(n));
  return self.substr(0, self.rfind('/')) + "/fake_child";
}

bool await_file(const std::string& path, std::string* content) {
  auto give_up = std::chrono::steady_clock::now() + kSafety;
  while (std::chrono::steady_clock::now() < give_up) {
    std::ifstream f(path);
    if (f) {
      if (content != nullptr) {
        std::ostringstream s;
        s << f.rdbuf();
        *content = s.str();
      }
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

namespace {

// proc_stat returns the state letter and process group of `pid`, or false
// when it does not exist.
bool proc_stat(pid_t pid, char* state, pid_t* pgrp) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!f || !std::getline(f, line)) return false;
  size_t close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(line.substr(close + 1));
  pid_t ppid;
  rest >> *state >> ppid >> *pgrp;
  return bool(rest);
}

}  // namespace

bool process_gone(pid_t pid) {
  auto give_up = std::chrono::steady_clock::now() + kSafety;
  while (std::chrono::steady_clock::now() < give_up) {
    char state;
    pid_t pgrp;
    if (!proc_stat(pid, &state, &pgrp) || state == 'Z' || state == 'X') return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

pid_t process_group(pid_t pid) {
  char state;
  pid_t pgrp;
  if (!proc_stat(pid, &state, &pgrp)) return -1;
  return pgrp;
}

bool no_children() {
  int status;
  errno = 0;
  return waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD;
}

}  // namespace testing_support
