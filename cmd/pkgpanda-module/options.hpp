// The module's parameters: parsed and validated in one place into a
// SupervisorConfig. Every key and default is documented in README.md.
#ifndef PKGPANDA_MODULE_OPTIONS_HPP
#define PKGPANDA_MODULE_OPTIONS_HPP

#include <string>
#include <vector>

#include "supervisor.hpp"

namespace pkgpanda_module {

// Parameter is one key/value pair of the module's configuration, as Mesos
// passes them (keys may repeat).
struct Parameter {
  std::string key;
  std::string value;
};

// kDefaultPort is pkgpandad's LIBPROCESS_PORT when `port` is not given:
// outside Mesos' default agent ports, DC/OS' agent port ranges and Linux'
// ephemeral ports, and used by no DC/OS component (README.md says where
// each range is set).
constexpr int kDefaultPort = 61052;

// parse_config builds the supervisor's configuration from the module's
// parameters and the agent's environment (KEY=VALUE strings, as in
// environ). On a bad parameter it returns false with *error saying which
// and why. Flags without which pkgpandad would serve mutations
// unauthenticated are a bad parameter, unless the flags opt out of
// authentication explicitly; then *warning (when not null) says so, and
// it is empty otherwise.
bool parse_config(const std::vector<Parameter>& parameters,
                  const std::vector<std::string>& agent_env,
                  SupervisorConfig* config, std::string* error,
                  std::string* warning = nullptr);

// check_binary returns true when `path` is a regular file this process
// may execute; otherwise false with *error saying which parameter and why
// (missing, a directory, not executable, ...). It looks at the file
// system, so the module calls it once, when it is created; a binary that
// goes away later is retried by the supervisor.
bool check_binary(const std::string& path, std::string* error);

// command_line renders argv for a log line: the arguments separated by
// spaces, each escaped with log_escape, and in double quotes when empty
// or holding a space.
std::string command_line(const Command& command);

// parse_duration reads a duration such as "500ms", "1.5s", "10secs",
// "2mins" or "1hrs": a decimal number and one unit out of ns, us, ms, s,
// secs, m, mins, h, hrs. At most 24 hours. Returns false when `text` is
// not one.
bool parse_duration(const std::string& text, Duration* out);

// environment_of copies a NULL-terminated environ-style array.
std::vector<std::string> environment_of(char* const* envp);

}  // namespace pkgpanda_module

#endif  // PKGPANDA_MODULE_OPTIONS_HPP
