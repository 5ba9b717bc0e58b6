// Stub of Mesos' <mesos/module.hpp>: the same names and signatures as
// include/mesos/module.hpp of apache/mesos (module API version 2), so the
// glue fails to compile here exactly when it would fail against Mesos.
#ifndef PKGPANDA_MODULE_STUB_MESOS_MODULE_HPP
#define PKGPANDA_MODULE_STUB_MESOS_MODULE_HPP

#include <mesos/version.hpp>

#define MESOS_MODULE_API_VERSION "2"

namespace mesos {
namespace modules {

struct ModuleBase
{
  ModuleBase(
      const char* _moduleApiVersion,
      const char* _mesosVersion,
      const char* _kind,
      const char* _authorName,
      const char* _authorEmail,
      const char* _description,
      bool (*_compatible)())
    : moduleApiVersion(_moduleApiVersion),
      mesosVersion(_mesosVersion),
      kind(_kind),
      authorName(_authorName),
      authorEmail(_authorEmail),
      description(_description),
      compatible(_compatible) {}

  const char* moduleApiVersion;
  const char* mesosVersion;
  const char* kind;
  const char* authorName;
  const char* authorEmail;
  const char* description;
  bool (*compatible)();
};

template <typename T>
struct Module;

template <typename T>
const char* kind();

} // namespace modules {
} // namespace mesos {

#endif
