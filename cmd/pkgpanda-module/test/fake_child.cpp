// fake_child stands in for pkgpandad in the supervisor tests. It reports
// what it saw and did through files in DIR (each written whole, then
// renamed into place, so a test that polls for one never reads half):
//
//   fake_child exit DIR CODE      exit at once with CODE
//   fake_child serve DIR          ready; on SIGTERM write "term", exit 0
//   fake_child ignore-term DIR    ready; on SIGTERM write "term", keep going
//   fake_child straggler DIR      fork a grandchild (same group) that
//                                 writes "grandchild", and on SIGTERM
//                                 "grandchild-term" but keeps going; then
//                                 serve, waiting on SIGTERM for
//                                 "grandchild-term" before exiting
//   fake_child inspect DIR        write "inspect" (pid, pgid, signal mask
//                                 and ignored set, open fds, argv, env)
//                                 and exit 0
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

extern char** environ;

namespace {

const char* g_dir = nullptr;
volatile sig_atomic_t g_term = 0;

void write_file(const std::string& name, const std::string& content) {
  std::string path = std::string(g_dir) + "/" + name;
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << content;
  }
  rename(tmp.c_str(), path.c_str());
}

// on_term_note records SIGTERM with async-signal-safe calls only.
void on_term_note(int) {
  g_term = 1;
  char path[4096];
  size_t n = strlen(g_dir);
  if (n + 6 >= sizeof path) return;
  memcpy(path, g_dir, n);
  memcpy(path + n, "/term", 6);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) close(fd);
}

// on_grandchild_term records SIGTERM in "grandchild-term" and keeps the
// grandchild running (it ignores SIGTERM in effect).
void on_grandchild_term(int) {
  char path[4096];
  size_t n = strlen(g_dir);
  if (n + 17 >= sizeof path) return;
  memcpy(path, g_dir, n);
  memcpy(path + n, "/grandchild-term", 17);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) close(fd);
}

void install(int sig, void (*handler)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigaction(sig, &sa, nullptr);
}

[[noreturn]] void serve() {
  install(SIGTERM, on_term_note);
  write_file("ready", std::to_string(getpid()));
  while (!g_term) pause();
  _exit(0);
}

std::string status_field(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.compare(0, strlen(field), field) == 0) {
      size_t i = line.find_first_not_of(" \t", strlen(field) + 1);
      return i == std::string::npos ? "" : line.substr(i);
    }
  }
  return "?";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: fake_child MODE DIR [ARG]\n");
    return 2;
  }
  std::string mode = argv[1];
  g_dir = argv[2];

  if (mode == "exit") {
    return argc > 3 ? atoi(argv[3]) : 1;
  }
  if (mode == "serve") serve();
  if (mode == "ignore-term") {
    install(SIGTERM, on_term_note);
    write_file("ready", std::to_string(getpid()));
    for (;;) pause();
  }
  if (mode == "straggler") {
    pid_t pid = fork();
    if (pid == 0) {
      install(SIGTERM, on_grandchild_term);
      write_file("grandchild", std::to_string(getpid()));
      for (;;) pause();
    }
    // On SIGTERM, wait (up to 10s) for the grandchild to have seen it too,
    // so the test can tell whether SIGTERM went to the whole group.
    install(SIGTERM, on_term_note);
    write_file("ready", std::to_string(getpid()));
    while (!g_term) pause();
    for (int i = 0; i < 1000 && access((std::string(g_dir) + "/grandchild-term").c_str(), F_OK) != 0; ++i) {
      usleep(10000);
    }
    _exit(0);
  }
  if (mode == "inspect") {
    std::ostringstream out;
    out << "pid " << getpid() << "\n";
    out << "pgid " << getpgid(0) << "\n";
    out << "sigblk " << status_field("SigBlk:") << "\n";
    out << "sigign " << status_field("SigIgn:") << "\n";
    char target[256];
    ssize_t tn = readlink("/proc/self/fd/0", target, sizeof target - 1);
    out << "stdin " << std::string(target, tn > 0 ? size_t(tn) : 0) << "\n";
    out << "fds";
    DIR* d = opendir("/proc/self/fd");
    int own = d != nullptr ? dirfd(d) : -1;
    while (d != nullptr) {
      struct dirent* e = readdir(d);
      if (e == nullptr) break;
      if (e->d_name[0] == '.') continue;
      if (atoi(e->d_name) == own) continue;
      out << " " << e->d_name;
    }
    if (d != nullptr) closedir(d);
    out << "\n";
    for (int i = 0; i < argc; ++i) out << "arg " << argv[i] << "\n";
    for (char** e = environ; *e != nullptr; ++e) out << "env " << *e << "\n";
    write_file("inspect", out.str());
    return 0;
  }
  fprintf(stderr, "fake_child: unknown mode %s\n", mode.c_str());
  return 2;
}
