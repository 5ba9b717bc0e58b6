// Stub of libprocess' <process/metrics/metrics.hpp>: add() and remove()
// keep the metrics in a registry the glue test reads; see metric.hpp.
#ifndef PKGPANDA_MODULE_STUB_PROCESS_METRICS_METRICS_HPP
#define PKGPANDA_MODULE_STUB_PROCESS_METRICS_METRICS_HPP

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <process/metrics/metric.hpp>

namespace process {
namespace metrics {
namespace stub {

struct Registry
{
  std::mutex mu;
  std::map<std::string, std::shared_ptr<Metric>> metrics;
};

inline Registry& registry()
{
  static Registry r;
  return r;
}

// value returns the registered metric's value, or -1 when none has `name`.
inline double value(const std::string& name)
{
  std::lock_guard<std::mutex> lock(registry().mu);
  auto it = registry().metrics.find(name);
  return it == registry().metrics.end() ? -1 : it->second->value_for_test();
}

// await waits up to `timeout` for the metric `name` to reach at least
// `want`, and returns its value then.
template <typename Rep, typename Period>
double await(const std::string& name, double want,
             std::chrono::duration<Rep, Period> timeout)
{
  std::unique_lock<std::mutex> lock(changes().mu);
  double v = value(name);
  changes().cv.wait_for(lock, timeout, [&] {
    v = value(name);
    return v >= want;
  });
  return v;
}

} // namespace stub {

template <typename T>
Future<Nothing> add(const T& metric)
{
  {
    std::lock_guard<std::mutex> lock(stub::registry().mu);
    stub::registry().metrics[metric.name()] = std::make_shared<T>(metric);
  }
  stub::changed();  // outside the registry lock: await() takes it inside
  return Future<Nothing>();
}

inline Future<Nothing> remove(const Metric& metric)
{
  std::lock_guard<std::mutex> lock(stub::registry().mu);
  stub::registry().metrics.erase(metric.name());
  return Future<Nothing>();
}

} // namespace metrics {
} // namespace process {

#endif
