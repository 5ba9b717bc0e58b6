// Fuzzing the parameter parser. The input is the module's parameters, one
// key=value per line ('\n' separates parameters, so a value carries any
// other byte, NUL included). Every input must either be refused with a
// one-line error, or give a configuration that keeps the invariants
// checked below.
//
// With clang: clang++ -fsanitize=fuzzer,address -DPKGPANDA_MODULE_LIBFUZZER
// builds a libFuzzer target. With g++ (make module-test): main() runs the
// seed corpus and a fixed number of deterministic mutations of it under
// ASan and UBSan.
#include <dirent.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../options.hpp"

using namespace pkgpanda_module;

namespace {

void require(bool ok, const char* what, const std::string& input) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_options: invariant broken: %s\ninput (%zu bytes):\n", what,
               input.size());
  std::fwrite(input.data(), 1, input.size(), stderr);
  std::fprintf(stderr, "\n");
  std::abort();
}

void check_one(const std::string& input) {
  std::vector<Parameter> params;
  size_t start = 0;
  while (start <= input.size()) {
    size_t end = input.find('\n', start);
    if (end == std::string::npos) end = input.size();
    std::string line = input.substr(start, end - start);
    size_t eq = line.find('=');
    if (!line.empty()) {
      params.push_back(eq == std::string::npos ? Parameter{line, ""}
                                               : Parameter{line.substr(0, eq), line.substr(eq + 1)});
    }
    start = end + 1;
  }
  const std::vector<std::string> env = {"PATH=/bin", "LIBPROCESS_IP=10.1.2.3", "LIBPROCESS_IP6=fd00::1",
                                        "LIBPROCESS_PORT=5051", "LIBPROCESS_SSL_ENABLED=1",
                                        "NOEQUALS"};
  for (const Parameter& p : params) {
    Duration d;
    if (parse_duration(p.value, &d)) {
      require(d.count() >= 0 && d <= std::chrono::hours(24), "duration in range", input);
    }
  }
  SupervisorConfig c;
  std::string error, warning;
  if (!parse_config(params, env, &c, &error, &warning)) {
    require(!error.empty(), "a refusal says why", input);
    for (char ch : error) require(ch >= 0x20 && ch <= 0x7e, "one line of printable ASCII", input);
    return;
  }
  require(error.empty(), "no error on success", input);
  // Accepted flags authenticate pkgpandad or opt out by name, and only the
  // opt-out warns.
  bool credentials = false, opt_out = false;
  for (const std::string& a : c.command.argv) {
    credentials = credentials || a.find("http-credentials") != std::string::npos ||
                  a.find("jwt-secret-key") != std::string::npos;
    opt_out = opt_out || a.find("-insecure-allow-unauthenticated-mutations") != std::string::npos;
  }
  require(credentials || opt_out, "credentials or the opt-out among the flags", input);
  require(warning.empty() || opt_out, "a warning only for the opt-out", input);
  require(!warning.empty() || credentials, "the opt-out without credentials warns", input);
  // The log line naming the command is one line of printable ASCII.
  for (char ch : command_line(c.command)) {
    require(ch >= 0x20 && ch <= 0x7e, "command_line is printable ASCII", input);
  }
  require(!c.command.path.empty() && c.command.path[0] == '/', "absolute binary", input);
  require(!c.command.argv.empty() && c.command.argv[0] == c.command.path, "argv[0]", input);
  for (const std::string& a : c.command.argv) {
    require(a.find('\0') == std::string::npos, "no NUL in argv", input);
  }
  int ports = 0;
  for (const std::string& kv : c.command.env) {
    size_t eq = kv.find('=');
    require(eq != std::string::npos && eq > 0, "env entry KEY=VALUE", input);
    require(kv.find('\0') == std::string::npos, "no NUL in env", input);
    ports += kv.compare(0, 16, "LIBPROCESS_PORT=") == 0;
  }
  require(ports == 1, "exactly one LIBPROCESS_PORT", input);
  require(c.backoff_initial >= std::chrono::milliseconds(1), "backoff_initial >= 1ms", input);
  require(c.backoff_initial <= c.backoff_max, "backoff_initial <= backoff_max", input);
  require(c.backoff_max <= std::chrono::hours(24), "backoff_max <= 24h", input);
  require(c.stop_grace >= Duration::zero(), "stop_grace >= 0", input);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check_one(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}

#ifndef PKGPANDA_MODULE_LIBFUZZER

namespace {

// Rng is xorshift64*: deterministic, so a failure reproduces.
struct Rng {
  uint64_t s = 0x9e3779b97f4a7c15ULL;
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545f4914f6cdd1dULL;
  }
  size_t below(size_t n) { return n == 0 ? 0 : size_t(next() % n); }
};

std::string mutate(const std::string& in, const std::vector<std::string>& corpus, Rng& r) {
  static const char* const tokens[] = {"binary=/x", "flag=", "env=", "env_pass=", "port=",
                                       "restart=", "backoff_initial=", "backoff_max=",
                                       "backoff_reset=", "stop_grace=", "ms", "secs", "mins",
                                       "hrs", "*", "=", "\n", "99999999999", ".5",
                                       "LIBPROCESS_PORT=1", "flag=--http-credentials",
                                       "flag=--jwt-secret-key=", "-http-credentials=",
                                       "flag=--insecure-allow-unauthenticated-mutations",
                                       "=false", "=true"};
  const size_t ntokens = sizeof tokens / sizeof tokens[0];
  std::string s = in;
  int edits = 1 + int(r.below(4));
  for (int i = 0; i < edits; ++i) {
    size_t at = r.below(s.size() + 1);
    switch (r.below(5)) {
      case 0:
        if (!s.empty()) s[r.below(s.size())] = char(r.next());
        break;
      case 1:
        s.insert(at, 1, char(r.next()));
        break;
      case 2:
        if (!s.empty()) s.erase(r.below(s.size()), 1 + r.below(8));
        break;
      case 3: {
        size_t t = r.below(ntokens + 1);  // one more: a NUL byte
        s.insert(at, t == ntokens ? std::string(1, '\0') : std::string(tokens[t]));
        break;
      }
      case 4: {
        const std::string& other = corpus[r.below(corpus.size())];
        size_t from = r.below(other.size() + 1);
        s.insert(at, other.substr(from, r.below(64)));
        break;
      }
    }
  }
  return s.substr(0, 4096);
}

}  // namespace

// main: fuzz_options CORPUS_DIR [ITERATIONS]
int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: fuzz_options CORPUS_DIR [ITERATIONS]\n");
    return 2;
  }
  long iterations = argc > 2 ? std::atol(argv[2]) : 20000;
  std::vector<std::string> corpus;
  DIR* d = opendir(argv[1]);
  if (d == nullptr) {
    std::fprintf(stderr, "fuzz_options: cannot open corpus %s\n", argv[1]);
    return 2;
  }
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(std::string(argv[1]) + "/" + e->d_name, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    corpus.push_back(s.str());
  }
  closedir(d);
  if (corpus.empty()) {
    std::fprintf(stderr, "fuzz_options: empty corpus %s\n", argv[1]);
    return 2;
  }
  for (const std::string& seed : corpus) check_one(seed);
  Rng r;
  for (long i = 0; i < iterations; ++i) {
    check_one(mutate(corpus[r.below(corpus.size())], corpus, r));
  }
  std::fprintf(stderr, "fuzz_options: %zu seeds and %ld mutations: ok\n", corpus.size(),
               iterations);
  return 0;
}

#endif
