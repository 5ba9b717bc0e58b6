// The Mesos glue, built against the stub headers in testing/: the module
// symbol the agent looks up, and create()/delete driving a real child.
#include <stdlib.h>

#include <chrono>
#include <memory>
#include <thread>
#include <string>

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

}  // namespace

TEST(ModuleDeclaration) {
  const auto& m = com_procpanda_Pkgpandad;
  CHECK_EQ(std::string(m.moduleApiVersion), std::string(MESOS_MODULE_API_VERSION));
  CHECK_EQ(std::string(m.mesosVersion), std::string(MESOS_VERSION));
  CHECK_EQ(std::string(m.kind), std::string("Anonymous"));
  CHECK(m.authorName != nullptr && m.authorEmail != nullptr && m.description != nullptr);
  CHECK(m.compatible == nullptr);
  CHECK(m.create != nullptr);
}

TEST(CreateRefusesBadParameters) {
  mesos::Parameters none;
  CHECK(com_procpanda_Pkgpandad.create(none) == nullptr);
  mesos::Parameters typo;
  add(&typo, "binary", fake_child());
  add(&typo, "prot", "5052");
  CHECK(com_procpanda_Pkgpandad.create(typo) == nullptr);
  CHECK(no_children());
}

TEST(CreateStartsAndDeleteStops) {
  TempDir dir;
  setenv("LIBPROCESS_IP", "127.0.0.9", 1);
  setenv("LIBPROCESS_PORT", "5051", 1);
  mesos::Parameters p;
  add(&p, "binary", fake_child());
  add(&p, "flag", "inspect");
  add(&p, "flag", dir.path());
  add(&p, "port", "61001");
  add(&p, "restart", "never");
  std::unique_ptr<mesos::modules::Anonymous> module(com_procpanda_Pkgpandad.create(p));
  REQUIRE(module != nullptr);
  std::string report;
  REQUIRE(await_file(dir.file("inspect"), &report));
  CHECK(report.find("env LIBPROCESS_IP=127.0.0.9\n") != std::string::npos);
  CHECK(report.find("env LIBPROCESS_PORT=61001\n") != std::string::npos);
  CHECK(report.find("5051") == std::string::npos);
  module.reset();
  CHECK(no_children());

  TempDir serving;
  mesos::Parameters q;
  add(&q, "binary", fake_child());
  add(&q, "flag", "serve");
  add(&q, "flag", serving.path());
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
  mesos::Parameters p;
  add(&p, "binary", dir.file("missing-pkgpandad"));
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
