// Stub of libprocess' <process/metrics/counter.hpp>; see metric.hpp.
#ifndef PKGPANDA_MODULE_STUB_PROCESS_METRICS_COUNTER_HPP
#define PKGPANDA_MODULE_STUB_PROCESS_METRICS_COUNTER_HPP

#include <cstdint>
#include <string>

#include <process/metrics/metric.hpp>

namespace process {
namespace metrics {

class Counter : public Metric
{
public:
  explicit Counter(const std::string& name) : Metric(name) {}

  Counter& operator++() { return *this += 1; }

  Counter& operator+=(int64_t v)
  {
    double prev = value_->load();
    while (!value_->compare_exchange_weak(prev, prev + static_cast<double>(v))) {
    }
    stub::changed();
    return *this;
  }
};

} // namespace metrics {
} // namespace process {

#endif
