// Parameter parsing: defaults, the child's environment, and every refusal.
#include <string>
#include <vector>

#include "../escape.hpp"
#include "../options.hpp"
#include "harness.hpp"

using namespace pkgpanda_module;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

namespace {

const std::vector<std::string> kAgentEnv = {
    "PATH=/opt/mesosphere/bin:/usr/bin",
    "HOME=/root",
    "SECRET_TOKEN=do-not-pass",
    "LIBPROCESS_IP=10.0.0.5",
    "LIBPROCESS_IP6=fd00::5",
    "LIBPROCESS_PORT=5051",
    "LIBPROCESS_ADVERTISE_IP=203.0.113.7",
    "LIBPROCESS_ADVERTISE_PORT=15051",
    "LIBPROCESS_SSL_ENABLED=true",
    "LIBPROCESS_SSL_CERT_FILE=/etc/ssl/agent.crt",
    "MESOS_WORK_DIR=/var/lib/mesos/slave",
    "PATH=/second/path/is/ignored",
};

// kCredentials is a credentials flag for the tests that are not about
// authentication.
const Parameter kCredentials = {"flag", "--http-credentials=/etc/creds.json"};

std::string parse_error(const std::vector<Parameter>& params) {
  SupervisorConfig c;
  std::string error;
  if (parse_config(params, kAgentEnv, &c, &error)) return "(accepted)";
  return error;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += x + "\n";
  return s;
}

}  // namespace

TEST(DefaultsAndAgentEnvironment) {
  SupervisorConfig c;
  std::string error;
  std::string warning = "unset";
  REQUIRE(parse_config({{"binary", "/opt/mesosphere/bin/pkgpandad"}, kCredentials}, kAgentEnv,
                       &c, &error, &warning));
  CHECK_EQ(warning, std::string());
  CHECK_EQ(c.command.path, std::string("/opt/mesosphere/bin/pkgpandad"));
  CHECK_EQ(joined(c.command.argv),
           std::string("/opt/mesosphere/bin/pkgpandad\n--http-credentials=/etc/creds.json\n"));
  // The agent's own port and advertised port never reach pkgpandad; its IP,
  // IPv6 address and advertised IP do; variables outside env_pass stay
  // behind. The port is 61052.
  CHECK_EQ(joined(c.command.env),
           std::string("PATH=/opt/mesosphere/bin:/usr/bin\n"
                       "HOME=/root\n"
                       "LIBPROCESS_SSL_ENABLED=true\n"
                       "LIBPROCESS_SSL_CERT_FILE=/etc/ssl/agent.crt\n"
                       "LIBPROCESS_IP=10.0.0.5\n"
                       "LIBPROCESS_IP6=fd00::5\n"
                       "LIBPROCESS_ADVERTISE_IP=203.0.113.7\n"
                       "LIBPROCESS_PORT=61052\n"));
  CHECK_EQ(kDefaultPort, 61052);
  CHECK(c.restart == RestartPolicy::kAlways);
  CHECK(c.backoff_initial == seconds(1));
  CHECK(c.backoff_max == seconds(60));
  CHECK(c.backoff_reset == minutes(10));
  CHECK(c.stop_grace == seconds(30));
}

TEST(EveryParameter) {
  SupervisorConfig c;
  std::string error;
  bool ok = parse_config(
      {
          {"binary", "/usr/bin/pkgpandad"},
          {"flag", "--pkgpanda=/opt/mesosphere/bin/pkgpanda"},
          {"flag", "--pkgpanda-arg=--root=/opt/mesosphere"},
          {"flag", "--jwt-secret-key"},
          {"flag", "/etc/jwt.key"},
          {"env_pass", "PATH"},
          {"env_pass", "MESOS_*"},
          {"env", "LIBPROCESS_IP=127.0.0.1"},
          {"env", "EMPTY="},
          {"env", "PATH=/override"},
          {"port", "61091"},
          {"restart", "on-failure"},
          {"backoff_initial", "250ms"},
          {"backoff_max", "1.5mins"},
          {"backoff_reset", "1hrs"},
          {"stop_grace", "0s"},
      },
      kAgentEnv, &c, &error);
  REQUIRE(ok);
  CHECK_EQ(error, std::string());
  CHECK_EQ(joined(c.command.argv),
           std::string("/usr/bin/pkgpandad\n--pkgpanda=/opt/mesosphere/bin/pkgpanda\n"
                       "--pkgpanda-arg=--root=/opt/mesosphere\n--jwt-secret-key\n/etc/jwt.key\n"));
  // An env entry wins over everything, in place.
  CHECK_EQ(joined(c.command.env),
           std::string("PATH=/override\n"
                       "MESOS_WORK_DIR=/var/lib/mesos/slave\n"
                       "LIBPROCESS_IP=127.0.0.1\n"
                       "LIBPROCESS_IP6=fd00::5\n"
                       "LIBPROCESS_ADVERTISE_IP=203.0.113.7\n"
                       "LIBPROCESS_PORT=61091\n"
                       "EMPTY=\n"));
  CHECK(c.restart == RestartPolicy::kOnFailure);
  CHECK(c.backoff_initial == milliseconds(250));
  CHECK(c.backoff_max == seconds(90));
  CHECK(c.backoff_reset == minutes(60));
  CHECK(c.stop_grace == seconds(0));
}

TEST(EnvPassNeverCopiesTheAgentsPorts) {
  SupervisorConfig c;
  std::string error;
  REQUIRE(parse_config({{"binary", "/b"}, kCredentials, {"env_pass", "LIBPROCESS_*"}}, kAgentEnv,
                       &c, &error));
  CHECK_EQ(joined(c.command.env),
           std::string("LIBPROCESS_SSL_ENABLED=true\n"
                       "LIBPROCESS_SSL_CERT_FILE=/etc/ssl/agent.crt\n"
                       "LIBPROCESS_IP=10.0.0.5\n"
                       "LIBPROCESS_IP6=fd00::5\n"
                       "LIBPROCESS_ADVERTISE_IP=203.0.113.7\n"
                       "LIBPROCESS_PORT=61052\n"));
}

TEST(AgentWithoutLibprocessIp) {
  SupervisorConfig c;
  std::string error;
  REQUIRE(parse_config({{"binary", "/b"}, kCredentials}, {"PATH=/bin", "LIBPROCESS_IP6="}, &c,
                       &error));
  CHECK_EQ(joined(c.command.env), std::string("PATH=/bin\nLIBPROCESS_PORT=61052\n"));
}

TEST(RefusesBadParameters) {
  const std::string b = "/opt/mesosphere/bin/pkgpandad";
  CHECK_EQ(parse_error({}), std::string("parameter binary is required: the absolute path of pkgpandad"));
  CHECK_EQ(parse_error({{"binary", "pkgpandad"}}),
           std::string("parameter binary=\"pkgpandad\": want an absolute path"));
  CHECK_EQ(parse_error({{"binary", b}, {"binary", b}}),
           "parameter binary=\"" + b + "\": given more than once");
  CHECK_EQ(parse_error({{"binary", b}, {"prot", "1"}}),
           std::string("unknown parameter \"prot\" (known: binary, flag, env, env_pass, port, "
                       "restart, backoff_initial, backoff_max, backoff_reset, stop_grace)"));
  CHECK_EQ(parse_error({{"binary", b}, {"port", "0"}}),
           std::string("parameter port=\"0\": want a port from 1 to 65535"));
  CHECK_EQ(parse_error({{"binary", b}, {"port", "65536"}}),
           std::string("parameter port=\"65536\": want a port from 1 to 65535"));
  CHECK_EQ(parse_error({{"binary", b}, {"port", "+80"}}),
           std::string("parameter port=\"+80\": want a port from 1 to 65535"));
  CHECK_EQ(parse_error({{"binary", b}, {"restart", "sometimes"}}),
           std::string("parameter restart=\"sometimes\": want always, on-failure or never"));
  CHECK_EQ(parse_error({{"binary", b}, {"backoff_initial", "0s"}}),
           std::string("parameter backoff_initial=\"0s\": want at least 1ms"));
  CHECK_EQ(parse_error({{"binary", b}, {"backoff_max", "2days"}}),
           std::string("parameter backoff_max=\"2days\": want a duration such as 500ms, "
                       "10secs or 2mins, at most 24 hours"));
  CHECK_EQ(parse_error({{"binary", b}, {"backoff_initial", "2mins"}}),
           std::string("parameter backoff_initial=\"2mins\": longer than backoff_max=\"1mins\" "
                       "(the default)"));
  CHECK_EQ(parse_error({{"binary", b}, {"backoff_max", "10ms"}}),
           std::string("parameter backoff_initial=\"1secs\": longer than backoff_max=\"10ms\""));
  CHECK_EQ(parse_error({{"binary", b}, {"env", "NOVALUE"}}),
           std::string("parameter env=\"NOVALUE\": want KEY=VALUE with KEY of letters, digits and _"));
  CHECK_EQ(parse_error({{"binary", b}, {"env", "=x"}}),
           std::string("parameter env=\"=x\": want KEY=VALUE with KEY of letters, digits and _"));
  CHECK_EQ(parse_error({{"binary", b}, {"env_pass", "A*B"}}),
           std::string("parameter env_pass=\"A*B\": want a variable name, or a prefix ending in *"));
  CHECK_EQ(parse_error({{"binary", b}, {"env_pass", "*"}}),
           std::string("parameter env_pass=\"*\": want a variable name, or a prefix ending in *"));
  // Bytes that would cut an argv string short or forge a log line.
  CHECK_EQ(parse_error({{"binary", b}, {"flag", std::string("--a\0b", 5)}}),
           std::string("parameter flag=\"--a\\x00b\": contains a NUL byte"));
  CHECK_EQ(parse_error({{"binary", b}, {"restart", "x\nE1202 forged"}}),
           std::string("parameter restart=\"x\\x0aE1202 forged\": want always, on-failure or never"));
}

TEST(AuthenticationIsRequiredOrRefusedByName) {
  const std::string b = "/opt/mesosphere/bin/pkgpandad";
  const std::string none =
      "parameter flag: no --http-credentials=FILE or --jwt-secret-key=FILE: pkgpandad would let "
      "anyone who reaches its port install and remove packages (to allow that anyway, add the "
      "flag --insecure-allow-unauthenticated-mutations)";
  const std::string warns =
      "pkgpandad serves mutations without authentication: the flag "
      "--insecure-allow-unauthenticated-mutations is set and neither --http-credentials nor "
      "--jwt-secret-key";
  struct Case {
    std::vector<std::string> flags;
    std::string error;    // "" when accepted
    std::string warning;  // when accepted
  } cases[] = {
      {{}, none, ""},
      {{"--pkgpanda=/opt/mesosphere/bin/pkgpanda"}, none, ""},
      {{"--http-credentials=/c.json"}, "", ""},
      {{"-http-credentials=/c.json"}, "", ""},
      {{"--http-credentials", "/c.json"}, "", ""},
      {{"-http-credentials", "/c.json", "--pkgpanda=/p"}, "", ""},
      {{"--jwt-secret-key=/k"}, "", ""},
      {{"--jwt-secret-key", "/k"}, "", ""},
      // The last one given counts, as in Go's flag package.
      {{"--http-credentials=/a.json", "--http-credentials=/b.json"}, "", ""},
      {{"--http-credentials=/c.json", "--insecure-allow-unauthenticated-mutations"}, "", ""},
      {{"--insecure-allow-unauthenticated-mutations"}, "", warns},
      {{"-insecure-allow-unauthenticated-mutations=1"}, "", warns},
      {{"--insecure-allow-unauthenticated-mutations=True"}, "", warns},
      {{"--insecure-allow-unauthenticated-mutations=false"}, none, ""},
      {{"--insecure-allow-unauthenticated-mutations", "--insecure-allow-unauthenticated-mutations=0"},
       none, ""},
      // Not the flags: other names, values of other flags' =, three dashes.
      {{"--http-credentials-file=/c.json"}, none, ""},
      {{"--pkgpanda-arg=--http-credentials=/c.json"}, none, ""},
      {{"---http-credentials=/c.json"}, none, ""},
      {{"--insecure-allow-unauthenticated-mutations-please"}, none, ""},
      {{"http-credentials=/c.json"}, none, ""},
      // What pkgpandad would refuse or misread.
      {{"--http-credentials="}, "parameter flag=\"--http-credentials=\": names no FILE", ""},
      {{"--http-credentials", ""}, "parameter flag=\"--http-credentials\": names no FILE", ""},
      {{"--pkgpanda=/p", "--http-credentials"},
       "parameter flag=\"--http-credentials\": needs a FILE: --http-credentials=FILE, or FILE in "
       "the next flag", ""},
      // --x FILE takes the next flag as FILE, whatever it looks like.
      {{"--http-credentials", "--insecure-allow-unauthenticated-mutations"}, "", ""},
      {{"--http-credentials=/c.json", "--jwt-secret-key=/k"},
       "parameter flag=\"--jwt-secret-key=/k\": pkgpandad takes --http-credentials or "
       "--jwt-secret-key, not both", ""},
      {{"--insecure-allow-unauthenticated-mutations=yes"},
       "parameter flag=\"--insecure-allow-unauthenticated-mutations=yes\": want true or false "
       "after =", ""},
  };
  for (const Case& c : cases) {
    std::vector<Parameter> params = {{"binary", b}};
    std::string label;
    for (const std::string& f : c.flags) {
      params.push_back({"flag", f});
      label += " [" + f + "]";
    }
    SupervisorConfig config;
    std::string error, warning = "unset";
    bool ok = parse_config(params, kAgentEnv, &config, &error, &warning);
    CHECK_EQ(label + " -> " + (ok ? "accepted" : error), label + " -> " + (c.error.empty() ? "accepted" : c.error));
    if (ok) CHECK_EQ(label + " warns: " + warning, label + " warns: " + c.warning);
  }
}

TEST(CommandLineForLogs) {
  Command c;
  c.argv = {"/opt/bin/pkgpandad", "--pkgpanda-arg=--root /opt", "", "--x=a\nE1202 forged",
            "back\\slash\"quote"};
  CHECK_EQ(command_line(c),
           std::string("/opt/bin/pkgpandad \"--pkgpanda-arg=--root /opt\" \"\" "
                       "\"--x=a\\x0aE1202 forged\" back\\x5cslash\\x22quote"));
}

TEST(LogEscapeLeavesOnePrintableLine) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += char(c);
  const std::string e = log_escape(all);
  std::string decoded;
  for (size_t i = 0; i < e.size(); ++i) {
    REQUIRE(e[i] >= 0x20 && e[i] <= 0x7e);
    if (e[i] == '"') CHECK(false);  // quotes only come escaped
    if (e[i] != '\\') {
      decoded += e[i];
      continue;
    }
    REQUIRE(i + 3 < e.size() + 0 && e[i + 1] == 'x');
    decoded += char(std::stoi(e.substr(i + 2, 2), nullptr, 16));
    i += 3;
  }
  CHECK(decoded == all);
  CHECK_EQ(log_escape("/opt/mesosphere/bin/pkgpandad --port=61052"),
           std::string("/opt/mesosphere/bin/pkgpandad --port=61052"));
  CHECK_EQ(log_escape("a\r\nb\x7f\xc2\x85"), std::string("a\\x0d\\x0ab\\x7f\\xc2\\x85"));
}

TEST(Durations) {
  struct Case {
    const char* text;
    bool ok;
    long long ns;
  } cases[] = {
      {"1s", true, 1000000000LL},
      {"10secs", true, 10000000000LL},
      {"500ms", true, 500000000LL},
      {"1.5s", true, 1500000000LL},
      {"0.001s", true, 1000000LL},
      {"2m", true, 120000000000LL},
      {"2mins", true, 120000000000LL},
      {"1h", true, 3600000000000LL},
      {"24hrs", true, 86400000000000LL},
      {"250us", true, 250000LL},
      {"7ns", true, 7LL},
      {"1.5ns", true, 1LL},
      {"0s", true, 0LL},
      {"24.000000001h", false, 0},
      {"25h", false, 0},
      {"1", false, 0},
      {"s", false, 0},
      {".5s", false, 0},
      {"1.s", false, 0},
      {"-1s", false, 0},
      {"1 s", false, 0},
      {"1sec", false, 0},
      {"1S", false, 0},
      {"1000000000ns", false, 0},  // ten digits
      {"1.0000000001s", false, 0},
      {"", false, 0},
  };
  for (const Case& c : cases) {
    Duration d{-1};
    bool ok = parse_duration(c.text, &d);
    if (ok != c.ok) {
      CHECK_EQ(std::string(c.text) + (ok ? " accepted" : " refused"),
               std::string(c.text) + (c.ok ? " accepted" : " refused"));
      continue;
    }
    if (ok) CHECK_EQ(std::string(c.text) + "=" + std::to_string(d.count()),
                     std::string(c.text) + "=" + std::to_string(c.ns));
  }
}

TEST(EnvironmentOfCopiesEnviron) {
  char a[] = "A=1", b[] = "B=";
  char* envp[] = {a, b, nullptr};
  CHECK_EQ(joined(environment_of(envp)), std::string("A=1\nB=\n"));
  CHECK(environment_of(nullptr).empty());
}
