// Stub of libprocess' <process/metrics/metric.hpp> for compile-checking the
// module glue without Mesos: a named metric whose value the stub registry
// (metrics.hpp) can read, so the glue test can assert what the agent's
// /metrics/snapshot would show. Real signatures: 3rdparty/libprocess/
// include/process/metrics/{metric,counter,push_gauge,metrics}.hpp.
#ifndef PKGPANDA_MODULE_STUB_PROCESS_METRICS_METRIC_HPP
#define PKGPANDA_MODULE_STUB_PROCESS_METRICS_METRIC_HPP

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

namespace process {

// Future and Nothing stand in for libprocess' and stout's types; the glue
// ignores the futures add() and remove() return.
template <typename T>
class Future {};

} // namespace process {

struct Nothing {};

namespace process {
namespace metrics {
namespace stub {

// Changes lets the glue test wait for a metric's value instead of polling:
// every change of any metric notifies `cv`.
struct Changes
{
  std::mutex mu;
  std::condition_variable cv;
};

inline Changes& changes()
{
  static Changes c;
  return c;
}

inline void changed()
{
  { std::lock_guard<std::mutex> lock(changes().mu); }
  changes().cv.notify_all();
}

} // namespace stub {

class Metric
{
public:
  virtual ~Metric() {}

  const std::string& name() const { return name_; }

  // value_for_test reads the current value (not a libprocess API).
  double value_for_test() const { return value_->load(); }

protected:
  explicit Metric(const std::string& name)
    : name_(name), value_(new std::atomic<double>(0)) {}

  std::string name_;
  std::shared_ptr<std::atomic<double>> value_;  // shared by copies
};

} // namespace metrics {
} // namespace process {

#endif
