// Stub of Mesos' generated <mesos/version.hpp> for compile-checking the
// module glue without Mesos. The real value is the Mesos release the
// module is built against (make module MESOS_PREFIX=...).
#ifndef PKGPANDA_MODULE_STUB_MESOS_VERSION_HPP
#define PKGPANDA_MODULE_STUB_MESOS_VERSION_HPP

#define MESOS_VERSION "1.12.0"

#endif
