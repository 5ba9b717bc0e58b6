// Escaping for log lines: every log line the module builds from its
// parameters (paths, flags, values) passes them through log_escape, so a
// value cannot end a line early or forge one.
#ifndef PKGPANDA_MODULE_ESCAPE_HPP
#define PKGPANDA_MODULE_ESCAPE_HPP

#include <string>

namespace pkgpanda_module {

// log_escape returns `s` with every byte outside printable ASCII
// (0x20-0x7e), and `\` and `"`, written as \xHH: the result is one line
// of printable ASCII from which `s` can be read back exactly.
std::string log_escape(const std::string& s);

}  // namespace pkgpanda_module

#endif  // PKGPANDA_MODULE_ESCAPE_HPP
