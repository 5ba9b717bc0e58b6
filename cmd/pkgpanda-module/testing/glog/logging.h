// Stub of <glog/logging.h>: LOG(INFO|WARNING|ERROR) write one line to
// stderr in glog's shape, so the glue compiles and runs without glog. The
// lines are also kept, with their severity letter, for the glue test to
// read (google::stub::lines()).
#ifndef PKGPANDA_MODULE_STUB_GLOG_LOGGING_H
#define PKGPANDA_MODULE_STUB_GLOG_LOGGING_H

#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

namespace google {
namespace stub {

struct Log
{
  std::mutex mu;
  std::vector<std::string> lines;
};

inline Log& log()
{
  static Log l;
  return l;
}

// lines returns every line logged so far, as "I message", "W message",
// "E message" (what glog writes after its prefix, and the letter).
inline std::vector<std::string> lines()
{
  std::lock_guard<std::mutex> lock(log().mu);
  return log().lines;
}

class LogLine
{
public:
  explicit LogLine(char severity) : severity_(severity) {}
  ~LogLine()
  {
    const std::string line = std::string(1, severity_) + " " + stream_.str();
    std::lock_guard<std::mutex> lock(log().mu);
    log().lines.push_back(line);
    std::cerr << line << std::endl;
  }
  std::ostream& stream() { return stream_; }

private:
  char severity_;
  std::ostringstream stream_;
};

} // namespace stub {
} // namespace google {

#define PKGPANDA_STUB_LOG_INFO 'I'
#define PKGPANDA_STUB_LOG_WARNING 'W'
#define PKGPANDA_STUB_LOG_ERROR 'E'
#define LOG(severity) \
  ::google::stub::LogLine(PKGPANDA_STUB_LOG_##severity).stream()

#endif
