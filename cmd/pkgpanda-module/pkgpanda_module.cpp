// The Mesos glue: an Anonymous module named com_procpanda_Pkgpandad whose
// instance supervises pkgpandad for as long as it exists. Everything else
// lives in the Mesos-free supervision code (supervisor.hpp, options.hpp).
#include <glog/logging.h>

#include <mesos/mesos.hpp>
#include <mesos/module.hpp>
#include <mesos/module/anonymous.hpp>

#include <process/metrics/counter.hpp>
#include <process/metrics/metrics.hpp>
#include <process/metrics/push_gauge.hpp>

#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "options.hpp"
#include "supervisor.hpp"

extern char** environ;

namespace {

using pkgpanda_module::Event;
using pkgpanda_module::Severity;

// AgentSink writes the supervisor's events to the agent's log and counts
// them in the agent's /metrics/snapshot:
//   pkgpanda_module/starts          pkgpandad started (exec succeeded)
//   pkgpanda_module/exits           pkgpandad exited, for any reason
//   pkgpanda_module/spawn_failures  pkgpandad could not be started
//   pkgpanda_module/running         1 while pkgpandad runs, else 0
class AgentSink final : public pkgpanda_module::Sink {
 public:
  AgentSink()
    : starts_("pkgpanda_module/starts"),
      exits_("pkgpanda_module/exits"),
      spawn_failures_("pkgpanda_module/spawn_failures"),
      running_("pkgpanda_module/running") {
    process::metrics::add(starts_);
    process::metrics::add(exits_);
    process::metrics::add(spawn_failures_);
    process::metrics::add(running_);
  }

  ~AgentSink() override {
    process::metrics::remove(starts_);
    process::metrics::remove(exits_);
    process::metrics::remove(spawn_failures_);
    process::metrics::remove(running_);
  }

  void record(const Event& event) override {
    switch (event.kind) {
      case Event::Kind::kStarted:
        ++starts_;
        running_ = 1;
        break;
      case Event::Kind::kExited:
        ++exits_;
        running_ = 0;
        break;
      case Event::Kind::kSpawnFailed:
        ++spawn_failures_;
        break;
      default:
        break;
    }
    switch (event.severity()) {
      case Severity::kInfo:
        LOG(INFO) << "pkgpanda module: " << event.message();
        break;
      case Severity::kWarning:
        LOG(WARNING) << "pkgpanda module: " << event.message();
        break;
      case Severity::kError:
        LOG(ERROR) << "pkgpanda module: " << event.message();
        break;
    }
  }

 private:
  process::metrics::Counter starts_;
  process::metrics::Counter exits_;
  process::metrics::Counter spawn_failures_;
  process::metrics::PushGauge running_;
};

// PkgpandaModule starts supervising pkgpandad when the agent creates it and
// stops pkgpandad (SIGTERM, then SIGKILL after stop_grace) when destroyed.
class PkgpandaModule final : public mesos::modules::Anonymous {
 public:
  explicit PkgpandaModule(pkgpanda_module::SupervisorConfig config)
    : supervisor_(std::move(config), sink_, clock_) {
    supervisor_.start();
  }

  ~PkgpandaModule() override { supervisor_.stop(); }

 private:
  AgentSink sink_;
  pkgpanda_module::SteadyClock clock_;
  pkgpanda_module::Supervisor supervisor_;  // declared last: stopped first
};

mesos::modules::Anonymous* create(const mesos::Parameters& parameters) {
  std::vector<pkgpanda_module::Parameter> params;
  for (int i = 0; i < parameters.parameter_size(); ++i) {
    params.push_back({parameters.parameter(i).key(), parameters.parameter(i).value()});
  }
  pkgpanda_module::SupervisorConfig config;
  std::string error, warning;
  // The agent has set LIBPROCESS_IP (and LIBPROCESS_IP6,
  // LIBPROCESS_ADVERTISE_IP) in its own environment before it creates
  // modules. Every refusal happens here, before anything is started: the
  // agent then exits with "Failed to create anonymous module".
  if (!pkgpanda_module::parse_config(params, pkgpanda_module::environment_of(environ),
                                     &config, &error, &warning) ||
      !pkgpanda_module::check_binary(config.command.path, &error)) {
    LOG(ERROR) << "pkgpanda module: not starting pkgpandad: " << error;
    return nullptr;
  }
  if (!warning.empty()) LOG(WARNING) << "pkgpanda module: " << warning;
  LOG(INFO) << "pkgpanda module: supervising " << pkgpanda_module::command_line(config.command);
  try {
    return new PkgpandaModule(std::move(config));
  } catch (const std::exception& e) {
    // An exception must not unwind into the agent.
    LOG(ERROR) << "pkgpanda module: not starting pkgpandad: " << e.what();
    return nullptr;
  }
}

}  // namespace

// The module's name is this variable's name; the agent finds it with dlsym.
// It is the one symbol the library exports: everything else is built with
// -fvisibility=hidden (module.mk).
__attribute__((visibility("default")))
mesos::modules::Module<mesos::modules::Anonymous> com_procpanda_Pkgpandad(
    MESOS_MODULE_API_VERSION,
    MESOS_VERSION,
    "procpanda",
    "procpanda@users.noreply.github.com",
    "Runs pkgpandad, the pkgpanda libprocess process, and restarts it when it exits.",
    nullptr,  // no compatible(): Mesos admits the module only at MESOS_VERSION
    create);
