#include "options.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>
#include <system_error>

#include "escape.hpp"

namespace pkgpanda_module {
namespace {

using std::chrono::nanoseconds;

constexpr int64_t kMaxDurationNs = int64_t(24) * 3600 * 1000000000;

// The LIBPROCESS_* variables the module sets itself: never copied through
// env_pass (the agent's LIBPROCESS_PORT and LIBPROCESS_ADVERTISE_PORT are
// the agent's own port, wrong for pkgpandad).
const char* const kManaged[] = {"LIBPROCESS_IP", "LIBPROCESS_IP6", "LIBPROCESS_ADVERTISE_IP",
                                "LIBPROCESS_PORT", "LIBPROCESS_ADVERTISE_PORT"};

// The agent's variables passed on as they are, in this order, when the
// agent has them: the agent sets them from --ip (or
// --ip_discovery_command), --ip6 (or --ip6_discovery_command) and
// --advertise_ip before it creates modules (src/slave/main.cpp:493-520 in
// apache/mesos). libprocess reads every LIBPROCESS_* variable as its flag
// of that name (3rdparty/libprocess/src/process.cpp:1076), LIBPROCESS_IP6
// as --ip6 (process.cpp:195-197, 1098-1099).
const char* const kFromAgent[] = {"LIBPROCESS_IP", "LIBPROCESS_IP6", "LIBPROCESS_ADVERTISE_IP"};

// pkgpandad's authentication flags (cmd/pkgpandad): each takes a FILE.
const char* const kCredentialFlags[] = {"http-credentials", "jwt-secret-key"};
// The flag that lets pkgpandad serve mutations without authentication.
const char kInsecureFlag[] = "insecure-allow-unauthenticated-mutations";

const char* const kDefaultEnvPass[] = {"PATH",   "HOME",   "LANG",
                                       "LC_ALL", "TMPDIR", "LIBPROCESS_SSL_*"};

// kKeys are the parameters, in the order error messages list them.
const char* const kKeys[] = {
    "binary",          "flag",        "env",           "env_pass",
    "port",            "restart",     "backoff_initial", "backoff_max",
    "backoff_reset",   "stop_grace",
};

bool is_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '_';
}

bool valid_name(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_name_char(c)) return false;
  }
  return true;
}

// quoted renders a value for an error message: at most 200 bytes of it,
// escaped so that a hostile value cannot forge log lines.
std::string quoted(const std::string& s) {
  std::string out = "\"" + log_escape(s.substr(0, 200));
  if (s.size() > 200) out += "...";
  return out + "\"";
}

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

struct EnvPattern {
  std::string text;
  bool prefix;  // "NAME*": every variable starting with NAME
  bool matches(const std::string& name) const {
    return prefix ? name.compare(0, text.size(), text) == 0 : name == text;
  }
};

bool parse_env_pattern(const std::string& s, EnvPattern* out) {
  bool prefix = !s.empty() && s.back() == '*';
  std::string name = prefix ? s.substr(0, s.size() - 1) : s;
  if (!valid_name(name)) return false;
  *out = EnvPattern{name, prefix};
  return true;
}

bool parse_port(const std::string& s, int* out) {
  if (s.empty() || s.size() > 5) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < 1 || v > 65535) return false;
  *out = v;
  return true;
}

// set_env puts KEY=VALUE into env, replacing an earlier KEY.
void set_env(std::vector<std::string>* env, const std::string& key,
             const std::string& value) {
  const std::string prefix = key + "=";
  for (std::string& kv : *env) {
    if (kv.compare(0, prefix.size(), prefix) == 0) {
      kv = prefix + value;
      return;
    }
  }
  env->push_back(prefix + value);
}

// The defaults of SupervisorConfig as the README spells them, for errors.
const char kDefaultBackoffInitial[] = "1secs";
const char kDefaultBackoffMax[] = "1mins";

// flag_name returns the name of a command-line flag as Go's flag package
// reads it ("-name", "--name", "-name=value", "--name=value"), and sets
// *value and *has_value; "" when `arg` is no flag.
std::string flag_name(const std::string& arg, std::string* value, bool* has_value) {
  size_t dashes = arg.compare(0, 2, "--") == 0 ? 2 : arg.compare(0, 1, "-") == 0 ? 1 : 0;
  if (dashes == 0 || arg.size() == dashes || arg[dashes] == '-' || arg[dashes] == '=') {
    return "";
  }
  size_t eq = arg.find('=', dashes);
  *has_value = eq != std::string::npos;
  *value = *has_value ? arg.substr(eq + 1) : "";
  return arg.substr(dashes, *has_value ? eq - dashes : std::string::npos);
}

// parse_go_bool reads a boolean as Go's strconv.ParseBool does.
bool parse_go_bool(const std::string& s, bool* out) {
  static const std::set<std::string> yes = {"1", "t", "T", "true", "TRUE", "True"};
  static const std::set<std::string> no = {"0", "f", "F", "false", "FALSE", "False"};
  if (yes.count(s) == 0 && no.count(s) == 0) return false;
  *out = yes.count(s) != 0;
  return true;
}

// check_authentication refuses flags with which pkgpandad would serve
// mutations to anyone who reaches its port: neither --http-credentials
// FILE nor --jwt-secret-key FILE (as --x=FILE or as --x and FILE in the
// next flag; the last one given counts, as in Go's flag package), and no
// --insecure-allow-unauthenticated-mutations. With that opt-out and no
// credentials, *warning (if not null) says so. The module does not know
// pkgpandad's other flags, so it reads every argument as a flag where it
// looks like one; what this lets through (a credentials flag after "--",
// say) pkgpandad refuses itself when it starts.
bool check_authentication(const std::vector<std::string>& flags, std::string* warning,
                          std::string* error) {
  std::map<std::string, std::string> credentials;  // flag name -> the flag that set it
  bool insecure = false;
  auto fail = [error](const std::string& flag, const std::string& why) {
    *error = "parameter flag=" + quoted(flag) + ": " + why;
    return false;
  };
  for (size_t i = 0; i < flags.size(); ++i) {
    std::string value;
    bool has_value = false;
    const std::string name = flag_name(flags[i], &value, &has_value);
    if (name == kInsecureFlag) {
      if (has_value && !parse_go_bool(value, &insecure)) {
        return fail(flags[i], "want true or false after =");
      }
      if (!has_value) insecure = true;
      continue;
    }
    bool is_credentials = false;
    for (const char* c : kCredentialFlags) is_credentials = is_credentials || name == c;
    if (!is_credentials) continue;
    const std::string& arg = flags[i];
    if (!has_value) {
      if (i + 1 == flags.size()) {
        return fail(arg, "needs a FILE: --" + name + "=FILE, or FILE in the next flag");
      }
      value = flags[++i];
    }
    if (value.empty()) return fail(arg, "names no FILE");
    credentials[name] = arg;
  }
  if (credentials.size() > 1) {
    return fail(credentials[kCredentialFlags[1]],
                "pkgpandad takes --http-credentials or --jwt-secret-key, not both");
  }
  if (credentials.empty() && !insecure) {
    *error =
        "parameter flag: no --http-credentials=FILE or --jwt-secret-key=FILE: pkgpandad "
        "would let anyone who reaches its port install and remove packages (to allow "
        "that anyway, add the flag --insecure-allow-unauthenticated-mutations)";
    return false;
  }
  if (credentials.empty() && warning != nullptr) {
    *warning =
        "pkgpandad serves mutations without authentication: the flag "
        "--insecure-allow-unauthenticated-mutations is set and neither "
        "--http-credentials nor --jwt-secret-key";
  }
  return true;
}

}  // namespace

bool parse_duration(const std::string& text, Duration* out) {
  size_t i = 0;
  int64_t whole = 0;
  size_t whole_digits = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (++whole_digits > 9) return false;
    whole = whole * 10 + (text[i++] - '0');
  }
  int64_t frac = 0, frac_scale = 1;
  size_t frac_digits = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (++frac_digits > 9) return false;
      frac = frac * 10 + (text[i++] - '0');
      frac_scale *= 10;
    }
    if (frac_digits == 0) return false;
  }
  if (whole_digits == 0) return false;
  static const std::map<std::string, int64_t> units = {
      {"ns", 1},
      {"us", 1000},
      {"ms", 1000000},
      {"s", 1000000000},
      {"secs", 1000000000},
      {"m", int64_t(60) * 1000000000},
      {"mins", int64_t(60) * 1000000000},
      {"h", int64_t(3600) * 1000000000},
      {"hrs", int64_t(3600) * 1000000000},
  };
  auto unit = units.find(text.substr(i));
  if (unit == units.end()) return false;
  // whole < 1e9 and unit <= 3.6e12: compare before multiplying.
  if (whole > kMaxDurationNs / unit->second) return false;
  int64_t ns = whole * unit->second;
  // frac < frac_scale <= 1e9; unit/frac_scale keeps the product in range.
  ns += frac * (unit->second / frac_scale) +
        (frac * (unit->second % frac_scale)) / frac_scale;
  if (ns > kMaxDurationNs) return false;
  *out = nanoseconds(ns);
  return true;
}

std::vector<std::string> environment_of(char* const* envp) {
  std::vector<std::string> env;
  for (; envp != nullptr && *envp != nullptr; ++envp) env.emplace_back(*envp);
  return env;
}

bool parse_config(const std::vector<Parameter>& parameters,
                  const std::vector<std::string>& agent_env,
                  SupervisorConfig* config, std::string* error,
                  std::string* warning) {
  SupervisorConfig c;
  std::string binary;
  std::vector<std::string> flags;
  std::vector<std::pair<std::string, std::string>> env_set;
  std::vector<EnvPattern> env_pass;
  int port = kDefaultPort;
  std::string backoff_initial = kDefaultBackoffInitial;
  std::string backoff_max = kDefaultBackoffMax;
  if (warning != nullptr) warning->clear();
  std::set<std::string> seen;
  const std::set<std::string> known(std::begin(kKeys), std::end(kKeys));
  const std::set<std::string> repeatable = {"flag", "env", "env_pass"};

  auto fail = [error](const std::string& key, const std::string& value,
                      const std::string& why) {
    *error = "parameter " + key + "=" + quoted(value) + ": " + why;
    return false;
  };

  for (const Parameter& p : parameters) {
    const std::string& k = p.key;
    const std::string& v = p.value;
    if (known.count(k) == 0) {
      std::string list;
      for (const char* name : kKeys) list += std::string(list.empty() ? "" : ", ") + name;
      *error = "unknown parameter " + quoted(k) + " (known: " + list + ")";
      return false;
    }
    if (repeatable.count(k) == 0 && !seen.insert(k).second) {
      return fail(k, v, "given more than once");
    }
    if (has_nul(v)) return fail(k, v, "contains a NUL byte");

    if (k == "binary") {
      if (v.empty() || v[0] != '/') return fail(k, v, "want an absolute path");
      binary = v;
    } else if (k == "flag") {
      flags.push_back(v);
    } else if (k == "env") {
      size_t eq = v.find('=');
      if (eq == std::string::npos || !valid_name(v.substr(0, eq))) {
        return fail(k, v, "want KEY=VALUE with KEY of letters, digits and _");
      }
      env_set.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else if (k == "env_pass") {
      EnvPattern pat;
      if (!parse_env_pattern(v, &pat)) {
        return fail(k, v, "want a variable name, or a prefix ending in *");
      }
      env_pass.push_back(pat);
    } else if (k == "port") {
      if (!parse_port(v, &port)) return fail(k, v, "want a port from 1 to 65535");
    } else if (k == "restart") {
      if (v == "always") {
        c.restart = RestartPolicy::kAlways;
      } else if (v == "on-failure") {
        c.restart = RestartPolicy::kOnFailure;
      } else if (v == "never") {
        c.restart = RestartPolicy::kNever;
      } else {
        return fail(k, v, "want always, on-failure or never");
      }
    } else {  // the durations
      Duration d;
      if (!parse_duration(v, &d)) {
        return fail(k, v, "want a duration such as 500ms, 10secs or 2mins, at most 24 hours");
      }
      bool zero_ok = k == "stop_grace";
      if (d < std::chrono::milliseconds(1) && !(zero_ok && d == Duration::zero())) {
        return fail(k, v, zero_ok ? "want 0 or at least 1ms" : "want at least 1ms");
      }
      if (k == "backoff_initial") {
        c.backoff_initial = d;
        backoff_initial = v;
      }
      if (k == "backoff_max") {
        c.backoff_max = d;
        backoff_max = v;
      }
      if (k == "backoff_reset") c.backoff_reset = d;
      if (k == "stop_grace") c.stop_grace = d;
    }
  }

  if (binary.empty()) {
    *error = "parameter binary is required: the absolute path of pkgpandad";
    return false;
  }
  if (c.backoff_initial > c.backoff_max) {
    *error = "parameter backoff_initial=" + quoted(backoff_initial) +
             ": longer than backoff_max=" + quoted(backoff_max) +
             (backoff_max == kDefaultBackoffMax ? " (the default)" : "");
    return false;
  }
  if (!check_authentication(flags, warning, error)) return false;
  if (env_pass.empty()) {
    for (const char* s : kDefaultEnvPass) {
      EnvPattern pat;
      parse_env_pattern(s, &pat);
      env_pass.push_back(pat);
    }
  }

  std::vector<std::string> env;
  std::set<std::string> copied;
  std::map<std::string, std::string> from_agent;
  for (const std::string& kv : agent_env) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    std::string name = kv.substr(0, eq);
    for (const char* a : kFromAgent) {
      if (name == a && kv.size() > eq + 1) from_agent.emplace(name, kv.substr(eq + 1));
    }
    bool managed = false;
    for (const char* m : kManaged) managed = managed || name == m;
    if (managed || copied.count(name) != 0) continue;  // first one wins
    for (const EnvPattern& pat : env_pass) {
      if (pat.matches(name)) {
        env.push_back(kv);
        copied.insert(name);
        break;
      }
    }
  }
  for (const char* a : kFromAgent) {
    auto it = from_agent.find(a);
    if (it != from_agent.end()) set_env(&env, a, it->second);
  }
  set_env(&env, "LIBPROCESS_PORT", std::to_string(port));
  for (const auto& kv : env_set) set_env(&env, kv.first, kv.second);

  c.command.path = binary;
  c.command.argv.push_back(binary);
  c.command.argv.insert(c.command.argv.end(), flags.begin(), flags.end());
  c.command.env = env;
  *config = std::move(c);
  return true;
}

bool check_binary(const std::string& path, std::string* error) {
  auto fail = [&](const std::string& why) {
    *error = "parameter binary=" + quoted(path) + ": " + why;
    return false;
  };
  auto errno_text = [](int err) { return std::error_code(err, std::generic_category()).message(); };
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) return fail("does not exist (" + errno_text(err) + ")");
    return fail("cannot be looked up: " + errno_text(err));
  }
  if (S_ISDIR(st.st_mode)) return fail("is a directory, not an executable file");
  if (!S_ISREG(st.st_mode)) return fail("is not a regular file");
  // As execve decides: by the effective user, and no file on a noexec mount.
  if (faccessat(AT_FDCWD, path.c_str(), X_OK, AT_EACCESS) != 0) {
    int err = errno;
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
    return fail("is not executable (mode " + std::string(mode) + ", owner uid " +
                std::to_string(st.st_uid) + "): " + errno_text(err));
  }
  return true;
}

std::string command_line(const Command& command) {
  std::string line;
  for (const std::string& arg : command.argv) {
    std::string a = log_escape(arg);
    if (a.empty() || a.find(' ') != std::string::npos) a = "\"" + a + "\"";
    line += (line.empty() ? "" : " ") + a;
  }
  return line;
}

}  // namespace pkgpanda_module
