// Stub of libprocess' <process/metrics/metrics.hpp>: add() and remove()
// keep the metrics in a registry the glue test reads; see metric.hpp.
#ifndef PKGPANDA_MODULE_STUB_PROCESS_METRICS_METRICS_HPP
#define PKGPANDA_MODULE_STUB_PROCESS_METRICS_METRICS_HPP

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

} // namespace stub {

template <typename T>
Future<Nothing> add(const T& metric)
{
  std::lock_guard<std::mutex> lock(stub::registry().mu);
  stub::registry().metrics[metric.name()] = std::make_shared<T>(metric);
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
