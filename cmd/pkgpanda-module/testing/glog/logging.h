// Stub of <glog/logging.h>: LOG(INFO|WARNING|ERROR) write one line to
// stderr in glog's shape, so the glue compiles and runs without glog.
#ifndef PKGPANDA_MODULE_STUB_GLOG_LOGGING_H
#define PKGPANDA_MODULE_STUB_GLOG_LOGGING_H

#include <iostream>
#include <sstream>

namespace google {
namespace stub {

class LogLine
{
public:
  explicit LogLine(char severity) : severity_(severity) {}
  ~LogLine() { std::cerr << severity_ << " " << stream_.str() << std::endl; }
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
