// Stub of libprocess' <process/metrics/push_gauge.hpp>; see metric.hpp.
#ifndef PKGPANDA_MODULE_STUB_PROCESS_METRICS_PUSH_GAUGE_HPP
#define PKGPANDA_MODULE_STUB_PROCESS_METRICS_PUSH_GAUGE_HPP

#include <string>

#include <process/metrics/metric.hpp>

namespace process {
namespace metrics {

class PushGauge : public Metric
{
public:
  explicit PushGauge(const std::string& name) : Metric(name) {}

  PushGauge& operator=(double v)
  {
    value_->store(v);
    stub::changed();
    return *this;
  }
};

} // namespace metrics {
} // namespace process {

#endif
