#include "harness.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <vector>

namespace harness {
namespace {

std::vector<Case>& cases() {
  static std::vector<Case> all;
  return all;
}

int& failures() {
  static int n = 0;
  return n;
}

}  // namespace

bool add(const char* name, std::function<void()> body) {
  cases().push_back(Case{name, std::move(body)});
  return true;
}

void fail(const char* file, int line, const std::string& what) {
  ++failures();
  std::cerr << "    " << file << ":" << line << ": FAILED: " << what
            << std::endl;
}

}  // namespace harness

// main runs every registered case, or only those named as arguments, and
// exits 1 if any check failed.
int main(int argc, char** argv) {
  int failed_cases = 0, ran = 0;
  const char* alarm_env = std::getenv("MODULE_TEST_ALARM_SECONDS");
  unsigned alarm_seconds = alarm_env != nullptr ? unsigned(std::atoi(alarm_env)) : 300;
  if (alarm_seconds == 0) alarm_seconds = 300;
  for (const harness::Case& c : harness::cases()) {
    bool selected = argc < 2;
    for (int i = 1; i < argc; ++i) selected = selected || std::strcmp(argv[i], c.name) == 0;
    if (!selected) continue;
    ++ran;
    int before = harness::failures();
    std::cerr << "=== RUN  " << c.name << std::endl;
    // A case that hangs (a supervisor that never stops its child) is a
    // failure: SIGALRM ends the binary with a non-zero status.
    alarm(alarm_seconds);
    try {
      c.body();
    } catch (const harness::Abort&) {
    } catch (const std::exception& e) {
      harness::fail(__FILE__, __LINE__, std::string("exception: ") + e.what());
    }
    bool ok = harness::failures() == before;
    if (!ok) ++failed_cases;
    std::cerr << (ok ? "--- PASS " : "--- FAIL ") << c.name << std::endl;
  }
  alarm(0);
  if (ran == 0) {
    std::cerr << "no test case matched" << std::endl;
    return 1;
  }
  std::cerr << (failed_cases == 0 ? "PASS" : "FAIL") << ": " << ran - failed_cases
            << "/" << ran << " cases" << std::endl;
  return failed_cases == 0 ? 0 : 1;
}
