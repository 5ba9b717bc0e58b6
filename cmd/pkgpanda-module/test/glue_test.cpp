// The Mesos glue, built against the stub headers in testing/: the module
// symbol the agent looks up, and create()/delete driving a real child.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>
#include <string>
#include <vector>

#include <glog/logging.h>

#include <mesos/mesos.hpp>
#include <mesos/module.hpp>
#include <mesos/module/anonymous.hpp>

#include <process/metrics/metrics.hpp>

#include "harness.hpp"
#include "support.hpp"

using namespace testing_support;

// Defined in pkgpanda_module.cpp; the agent finds it by this name.
extern mesos::modules::Module<mesos::modules::Anonymous> com_procpanda_Pkgpandad;

namespace {

void add(mesos::Parameters* p, const std::string& key, const std::string& value) {
  mesos::Parameter* param = p->add_parameter();
  param->set_key(key);
  param->set_value(value);
}

// await_metric waits for a metric the supervisor thread sets to reach at
// least `want` (up to kSafety) and returns its value then.
double await_metric(const std::string& name, double want) {
  return process::metrics::stub::await(name, want, kSafety);
}

// kCredentials is the flag every module below gets unless a test is about
// authentication: pkgpandad's own check of the file is not the module's.
const char kCredentials[] = "--http-credentials=/opt/mesosphere/etc/pkgpanda-credentials.json";

// log_mark and logged_since read the log lines the glue wrote from a
// point on (the stub glog keeps them).
size_t log_mark() { return google::stub::lines().size(); }
std::vector<std::string> logged_since(size_t mark) {
  std::vector<std::string> all = google::stub::lines();
  return std::vector<std::string>(all.begin() + long(mark), all.end());
}

// refusal runs create() with `p`, which must fail, and returns the one
// line it logged; and checks that nothing was left started: no child, no
// metric.
std::string refusal(const mesos::Parameters& p) {
  size_t mark = log_mark();
  mesos::modules::Anonymous* module = com_procpanda_Pkgpandad.create(p);
  CHECK(module == nullptr);
  delete module;
  CHECK(no_children());
  CHECK_EQ(process::metrics::stub::value("pkgpanda_module/starts"), -1.0);
  std::vector<std::string> lines = logged_since(mark);
  CHECK_EQ(lines.size(), size_t(1));
  return lines.empty() ? "" : lines.back();
}

// write_file creates `path` with `mode` and content.
void write_file(const std::string& path, mode_t mode, const std::string& content = "") {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, content.data(), content.size()) == ssize_t(content.size()));
  close(fd);
  REQUIRE(chmod(path.c_str(), mode) == 0);
}

}  // namespace

TEST(ModuleDeclaration) {
  const auto& m = com_procpanda_Pkgpandad;
  CHECK_EQ(std::string(m.moduleApiVersion), std::string(MESOS_MODULE_API_VERSION));
  CHECK_EQ(std::string(m.mesosVersion), std::string(MESOS_VERSION));
  CHECK_EQ(std::string(m.kind), std::string("Anonymous"));
  CHECK(m.authorName != nullptr && m.authorEmail != nullptr && m.description != nullptr);
  // authorEmail is an email address: local@domain, the domain dotted.
  const std::string email = m.authorEmail;
  const size_t at = email.find('@');
  CHECK(at != std::string::npos && at > 0 && email.find('@', at + 1) == std::string::npos);
  CHECK(email.find('.', at) != std::string::npos && email.back() != '.');
  CHECK(email.find_first_of(" :/<>") == std::string::npos);
  CHECK(m.compatible == nullptr);
  CHECK(m.create != nullptr);
}

TEST(CreateRefusesBadParameters) {
  mesos::Parameters none;
  CHECK_EQ(refusal(none), std::string("E pkgpanda module: not starting pkgpandad: "
                                      "parameter binary is required: the absolute path of "
                                      "pkgpandad"));
  mesos::Parameters typo;
  add(&typo, "binary", fake_child());
  add(&typo, "flag", kCredentials);
  add(&typo, "prot", "5052");
  CHECK(refusal(typo).find("unknown parameter \"prot\" (known: binary, ") != std::string::npos);
  mesos::Parameters backoff;
  add(&backoff, "binary", fake_child());
  add(&backoff, "flag", kCredentials);
  add(&backoff, "backoff_initial", "2mins");
  CHECK_EQ(refusal(backoff),
           std::string("E pkgpanda module: not starting pkgpandad: parameter "
                       "backoff_initial=\"2mins\": longer than backoff_max=\"1mins\" (the "
                       "default)"));
}

// Without credentials pkgpandad would let anyone who reaches its port
// install packages: create() fails, and the agent with it, unless the
// flags opt out by name.
TEST(CreateRefusesPkgpandadWithoutAuthentication) {
  mesos::Parameters none;
  add(&none, "binary", fake_child());
  add(&none, "flag", "--pkgpanda=/opt/mesosphere/bin/pkgpanda");
  CHECK_EQ(refusal(none),
           std::string("E pkgpanda module: not starting pkgpandad: parameter flag: no "
                       "--http-credentials=FILE or --jwt-secret-key=FILE: pkgpandad would let "
                       "anyone who reaches its port install and remove packages (to allow that "
                       "anyway, add the flag --insecure-allow-unauthenticated-mutations)"));
  mesos::Parameters dangling;
  add(&dangling, "binary", fake_child());
  add(&dangling, "flag", "--jwt-secret-key");
  CHECK_EQ(refusal(dangling),
           std::string("E pkgpanda module: not starting pkgpandad: parameter "
                       "flag=\"--jwt-secret-key\": needs a FILE: --jwt-secret-key=FILE, or "
                       "FILE in the next flag"));
  mesos::Parameters disabled;
  add(&disabled, "binary", fake_child());
  add(&disabled, "flag", "--insecure-allow-unauthenticated-mutations=false");
  CHECK(refusal(disabled).find("parameter flag: no --http-credentials=FILE") != std::string::npos);

  // Each accepted form starts the child; the opt-out is logged as a warning.
  struct Case {
    std::vector<std::string> flags;
    bool warns;
  } cases[] = {
      {{"--http-credentials=/etc/creds.json"}, false},
      {{"--http-credentials", "/etc/creds.json"}, false},
      {{"-jwt-secret-key=/etc/jwt.key"}, false},
      {{"--jwt-secret-key", "/etc/jwt.key"}, false},
      {{"--insecure-allow-unauthenticated-mutations"}, true},
      {{"--insecure-allow-unauthenticated-mutations=true"}, true},
  };
  for (const Case& c : cases) {
    TempDir dir;
    mesos::Parameters p;
    add(&p, "binary", fake_child());
    add(&p, "flag", "serve");
    add(&p, "flag", dir.path());
    for (const std::string& f : c.flags) add(&p, "flag", f);
    size_t mark = log_mark();
    std::unique_ptr<mesos::modules::Anonymous> module(com_procpanda_Pkgpandad.create(p));
    REQUIRE(module != nullptr);
    REQUIRE(await_file(dir.file("ready")));
    module.reset();
    CHECK(no_children());
    std::vector<std::string> lines = logged_since(mark);
    REQUIRE(!lines.empty());
    const std::string warning =
        "W pkgpanda module: pkgpandad serves mutations without authentication: the flag "
        "--insecure-allow-unauthenticated-mutations is set and neither --http-credentials "
        "nor --jwt-secret-key";
    CHECK_EQ(c.flags[0] + (lines[0] == warning ? " warns" : " does not warn"),
             c.flags[0] + (c.warns ? " warns" : " does not warn"));
  }
}

// A binary that cannot be executed is refused at create(), saying why,
// and nothing is started.
TEST(CreateRefusesBinaryThatCannotRun) {
  TempDir dir;
  const std::string missing = dir.file("missing-pkgpandad");
  const std::string plain = dir.file("plain-file");
  write_file(plain, 0644, "#!/bin/sh\n");
  const std::string prefix = "E pkgpanda module: not starting pkgpandad: parameter binary=\"";
  struct Case {
    std::string binary;
    std::string want;
  } cases[] = {
      {missing, prefix + missing + "\": does not exist (No such file or directory)"},
      {plain + "/pkgpandad", prefix + plain + "/pkgpandad\": does not exist (Not a directory)"},
      {dir.path(), prefix + dir.path() + "\": is a directory, not an executable file"},
      {"/dev/null", prefix + "/dev/null\": is not a regular file"},
      {plain, prefix + plain + "\": is not executable (mode 0644, owner uid " +
                  std::to_string(geteuid()) + "): Permission denied"},
  };
  for (const Case& c : cases) {
    mesos::Parameters p;
    add(&p, "binary", c.binary);
    add(&p, "flag", kCredentials);
    CHECK_EQ(refusal(p), c.want);
  }
}

// Values from the parameters reach the agent's log escaped: a newline in a
// flag or in the binary's path cannot forge a log line.
TEST(LogLinesEscapeParameters) {
  TempDir dir;
  const std::string binary = dir.file("pkgpandad\nE1202 forged");
  REQUIRE(symlink(fake_child().c_str(), binary.c_str()) == 0);
  mesos::Parameters p;
  add(&p, "binary", binary);
  add(&p, "flag", "serve");
  add(&p, "flag", dir.path());
  add(&p, "flag", kCredentials);
  add(&p, "flag", "--pkgpanda-arg=x\nE1202 forged too");
  add(&p, "restart", "never");
  size_t mark = log_mark();
  std::unique_ptr<mesos::modules::Anonymous> module(com_procpanda_Pkgpandad.create(p));
  REQUIRE(module != nullptr);
  REQUIRE(await_file(dir.file("ready")));
  module.reset();
  CHECK(no_children());
  std::vector<std::string> lines = logged_since(mark);
  REQUIRE(lines.size() >= 2);
  const std::string escaped = dir.path() + "/pkgpandad\\x0aE1202 forged";
  CHECK_EQ(lines[0], "I pkgpanda module: supervising \"" + escaped + "\" serve " + dir.path() +
                         " " + kCredentials + " \"--pkgpanda-arg=x\\x0aE1202 forged too\"");
  CHECK(lines[1].find("I pkgpanda module: started pkgpandad as pid ") == 0);
  CHECK(lines[1].size() > escaped.size() &&
        lines[1].compare(lines[1].size() - escaped.size() - 3, std::string::npos,
                         "): " + escaped) == 0);
  for (const std::string& line : lines) CHECK(line.find('\n') == std::string::npos);
}

TEST(CreateStartsAndDeleteStops) {
  TempDir dir;
  // As an agent started with --ip, --ip6 and --port=5051 has them.
  setenv("LIBPROCESS_IP", "127.0.0.9", 1);
  setenv("LIBPROCESS_IP6", "fd00::9", 1);
  setenv("LIBPROCESS_PORT", "5051", 1);
  mesos::Parameters p;
  add(&p, "binary", fake_child());
  add(&p, "flag", "inspect");
  add(&p, "flag", dir.path());
  add(&p, "flag", kCredentials);
  add(&p, "port", "61001");
  add(&p, "restart", "never");
  std::unique_ptr<mesos::modules::Anonymous> module(com_procpanda_Pkgpandad.create(p));
  REQUIRE(module != nullptr);
  std::string report;
  REQUIRE(await_file(dir.file("inspect"), &report));
  CHECK(report.find("env LIBPROCESS_IP=127.0.0.9\n") != std::string::npos);
  CHECK(report.find("env LIBPROCESS_IP6=fd00::9\n") != std::string::npos);
  CHECK(report.find("env LIBPROCESS_PORT=61001\n") != std::string::npos);
  CHECK(report.find("5051") == std::string::npos);
  module.reset();
  CHECK(no_children());
  unsetenv("LIBPROCESS_IP6");

  // Without `port`, the default port.
  TempDir defaults;
  mesos::Parameters d;
  add(&d, "binary", fake_child());
  add(&d, "flag", "inspect");
  add(&d, "flag", defaults.path());
  add(&d, "flag", kCredentials);
  add(&d, "restart", "never");
  module.reset(com_procpanda_Pkgpandad.create(d));
  REQUIRE(module != nullptr);
  REQUIRE(await_file(defaults.file("inspect"), &report));
  CHECK(report.find("env LIBPROCESS_PORT=61052\n") != std::string::npos);
  CHECK(report.find("LIBPROCESS_IP6") == std::string::npos);
  module.reset();
  CHECK(no_children());

  TempDir serving;
  mesos::Parameters q;
  add(&q, "binary", fake_child());
  add(&q, "flag", "serve");
  add(&q, "flag", serving.path());
  add(&q, "flag", kCredentials);
  module.reset(com_procpanda_Pkgpandad.create(q));
  REQUIRE(module != nullptr);
  REQUIRE(await_file(serving.file("ready")));
  // The agent's /metrics/snapshot shows the child running.
  CHECK_EQ(await_metric("pkgpanda_module/starts", 1.0), 1.0);
  CHECK_EQ(await_metric("pkgpanda_module/running", 1.0), 1.0);
  CHECK_EQ(process::metrics::stub::value("pkgpanda_module/exits"), 0.0);
  module.reset();  // SIGTERM; the child exits at once
  CHECK(await_file(serving.file("term")));
  CHECK(no_children());
  // Destroying the module takes its metrics away.
  CHECK_EQ(process::metrics::stub::value("pkgpanda_module/starts"), -1.0);
  unsetenv("LIBPROCESS_IP");
  unsetenv("LIBPROCESS_PORT");
}

TEST(MetricsCountFailedStarts) {
  TempDir dir;
  // Executable, so create() takes it, but empty: execve fails (ENOEXEC).
  const std::string empty = dir.file("empty-pkgpandad");
  write_file(empty, 0755);
  mesos::Parameters p;
  add(&p, "binary", empty);
  add(&p, "flag", kCredentials);
  add(&p, "backoff_initial", "1ms");
  add(&p, "backoff_max", "1ms");
  std::unique_ptr<mesos::modules::Anonymous> module(com_procpanda_Pkgpandad.create(p));
  REQUIRE(module != nullptr);
  // Retried every millisecond: the counter reaches 2.
  CHECK(await_metric("pkgpanda_module/spawn_failures", 2.0) >= 2.0);
  CHECK_EQ(process::metrics::stub::value("pkgpanda_module/starts"), 0.0);
  CHECK_EQ(process::metrics::stub::value("pkgpanda_module/running"), 0.0);
  module.reset();
  CHECK(no_children());
}
