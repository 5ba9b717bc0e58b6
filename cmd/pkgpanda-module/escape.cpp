#include "escape.hpp"

namespace pkgpanda_module {

std::string log_escape(const std::string& s) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    // Bytes from 0x80 up are escaped too: a log reader may take a UTF-8
    // NEL (U+0085) or LINE SEPARATOR (U+2028) for a line break.
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += char(c);
    }
  }
  return out;
}

}  // namespace pkgpanda_module
