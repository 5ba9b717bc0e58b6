// A minimal test harness: TEST(name) registers a case, CHECK/CHECK_EQ
// record failures with file:line, REQUIRE stops the case. main() lives in
// harness.cpp and runs every case (or those named on the command line).
#ifndef PKGPANDA_MODULE_TEST_HARNESS_HPP
#define PKGPANDA_MODULE_TEST_HARNESS_HPP

#include <functional>
#include <sstream>
#include <string>

namespace harness {

struct Case {
  const char* name;
  std::function<void()> body;
};

// add registers a case; TEST() calls it at static-initialisation time.
bool add(const char* name, std::function<void()> body);
// fail records a failure of the running case.
void fail(const char* file, int line, const std::string& what);

// Abort ends the running case after a failed REQUIRE.
struct Abort {};

template <typename A, typename B>
std::string mismatch(const char* a_expr, const char* b_expr, const A& a,
                     const B& b) {
  std::ostringstream out;
  out << a_expr << " == " << b_expr << "\n      got:  " << a
      << "\n      want: " << b;
  return out.str();
}

}  // namespace harness

#define HARNESS_CAT2(a, b) a##b
#define HARNESS_CAT(a, b) HARNESS_CAT2(a, b)

#define TEST(name)                                                        \
  static void name();                                                     \
  static const bool HARNESS_CAT(registered_, name) = harness::add(#name, name); \
  static void name()

#define CHECK(cond)                                     \
  do {                                                  \
    if (!(cond)) harness::fail(__FILE__, __LINE__, #cond); \
  } while (0)

#define CHECK_EQ(a, b)                                                      \
  do {                                                                      \
    const auto& harness_a = (a);                                            \
    const auto& harness_b = (b);                                            \
    if (!(harness_a == harness_b)) {                                        \
      harness::fail(__FILE__, __LINE__,                                     \
                    harness::mismatch(#a, #b, harness_a, harness_b));       \
    }                                                                       \
  } while (0)

#define REQUIRE(cond)                                   \
  do {                                                  \
    if (!(cond)) {                                      \
      harness::fail(__FILE__, __LINE__, #cond);         \
      throw harness::Abort{};                           \
    }                                                   \
  } while (0)

#endif  // PKGPANDA_MODULE_TEST_HARNESS_HPP
