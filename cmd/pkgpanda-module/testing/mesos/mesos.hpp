// Stub of Mesos' <mesos/mesos.hpp>: only mesos::Parameter and
// mesos::Parameters, with the accessors protoc generates for
//   message Parameter { required string key = 1; required string value = 2; }
//   message Parameters { repeated Parameter parameter = 1; }
// (include/mesos/mesos.proto), backed by a std::deque.
#ifndef PKGPANDA_MODULE_STUB_MESOS_MESOS_HPP
#define PKGPANDA_MODULE_STUB_MESOS_MESOS_HPP

#include <deque>
#include <string>

#include <mesos/version.hpp>

namespace mesos {

class Parameter
{
public:
  const std::string& key() const { return key_; }
  const std::string& value() const { return value_; }
  void set_key(const std::string& value) { key_ = value; }
  void set_value(const std::string& value) { value_ = value; }

private:
  std::string key_;
  std::string value_;
};

class Parameters
{
public:
  int parameter_size() const { return static_cast<int>(parameter_.size()); }
  const Parameter& parameter(int index) const { return parameter_[index]; }
  Parameter* add_parameter()
  {
    parameter_.emplace_back();
    return &parameter_.back();
  }

private:
  std::deque<Parameter> parameter_;
};

} // namespace mesos {

#endif
