#include "options.hpp"

#include <cstdint>
#include <map>
#include <set>

namespace pkgpanda_module {
namespace {

using std::chrono::nanoseconds;

constexpr int64_t kMaxDurationNs = int64_t(24) * 3600 * 1000000000;

// The LIBPROCESS_* variables the module sets itself: never copied through
// env_pass (the agent's LIBPROCESS_PORT and LIBPROCESS_ADVERTISE_PORT are
// the agent's own port, wrong for pkgpandad).
const char* const kManaged[] = {"LIBPROCESS_IP", "LIBPROCESS_ADVERTISE_IP",
                                "LIBPROCESS_PORT", "LIBPROCESS_ADVERTISE_PORT"};

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

// quoted renders a value for an error message, escaping control bytes so a
// hostile value cannot forge log lines.
std::string quoted(const std::string& s) {
  static const char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : s.substr(0, 200)) {
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += char(c);
    }
  }
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
                  SupervisorConfig* config, std::string* error) {
  SupervisorConfig c;
  std::string binary;
  std::vector<std::string> flags;
  std::vector<std::pair<std::string, std::string>> env_set;
  std::vector<EnvPattern> env_pass;
  int port = kDefaultPort;
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
      if (k == "backoff_initial") c.backoff_initial = d;
      if (k == "backoff_max") c.backoff_max = d;
      if (k == "backoff_reset") c.backoff_reset = d;
      if (k == "stop_grace") c.stop_grace = d;
    }
  }

  if (binary.empty()) {
    *error = "parameter binary is required: the absolute path of pkgpandad";
    return false;
  }
  if (c.backoff_initial > c.backoff_max) {
    *error = "parameter backoff_initial is longer than backoff_max";
    return false;
  }
  if (env_pass.empty()) {
    for (const char* s : kDefaultEnvPass) {
      EnvPattern pat;
      parse_env_pattern(s, &pat);
      env_pass.push_back(pat);
    }
  }

  std::vector<std::string> env;
  std::set<std::string> copied;
  std::string agent_ip, agent_advertise_ip;
  for (const std::string& kv : agent_env) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    std::string name = kv.substr(0, eq);
    if (name == "LIBPROCESS_IP" && agent_ip.empty()) agent_ip = kv.substr(eq + 1);
    if (name == "LIBPROCESS_ADVERTISE_IP" && agent_advertise_ip.empty()) {
      agent_advertise_ip = kv.substr(eq + 1);
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
  if (!agent_ip.empty()) set_env(&env, "LIBPROCESS_IP", agent_ip);
  if (!agent_advertise_ip.empty()) {
    set_env(&env, "LIBPROCESS_ADVERTISE_IP", agent_advertise_ip);
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

}  // namespace pkgpanda_module
