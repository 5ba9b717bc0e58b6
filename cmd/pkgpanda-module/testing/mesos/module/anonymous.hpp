// Stub of Mesos' <mesos/module/anonymous.hpp>: the Anonymous kind and its
// Module specialisation, with the signatures of apache/mesos.
#ifndef PKGPANDA_MODULE_STUB_MESOS_MODULE_ANONYMOUS_HPP
#define PKGPANDA_MODULE_STUB_MESOS_MODULE_ANONYMOUS_HPP

#include <mesos/mesos.hpp>
#include <mesos/module.hpp>

namespace mesos {
namespace modules {

class Anonymous
{
public:
  Anonymous() {}

  virtual ~Anonymous() {}
};

template <>
inline const char* kind<Anonymous>()
{
  return "Anonymous";
}

template <>
struct Module<Anonymous> : ModuleBase
{
  Module(const char* _moduleApiVersion,
         const char* _mesosVersion,
         const char* _authorName,
         const char* _authorEmail,
         const char* _description,
         bool (*_compatible)(),
         Anonymous* (*_create)(const Parameters& parameters))
    : ModuleBase(_moduleApiVersion,
                 _mesosVersion,
                 mesos::modules::kind<Anonymous>(),
                 _authorName,
                 _authorEmail,
                 _description,
                 _compatible),
      create(_create) {}

  Anonymous* (*create)(const Parameters& parameters);
};

} // namespace modules {
} // namespace mesos {

#endif
