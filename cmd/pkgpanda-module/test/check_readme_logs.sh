#!/bin/sh
# check_readme_logs.sh README SOURCE: every glog line README quotes from
# SOURCE (".. pkgpanda_module.cpp:N] pkgpanda module: ...") names a line N
# of SOURCE that logs with that severity and whose string literal the
# quoted line starts with, so the README's log excerpts follow the code.
set -eu
readme=$1
source=$2
name=$(basename "$source")
lines=$(grep -E "^[IWE][0-9]{8} [0-9:.]+ +[0-9]+ $name:[0-9]+\] " "$readme" || true)
if [ -z "$lines" ]; then
  echo "check_readme_logs: $readme quotes no log line of $name" >&2
  exit 1
fi
failed=0
count=0
while IFS= read -r line; do
  count=$((count + 1))
  letter=$(printf '%s' "$line" | cut -c1)
  n=$(printf '%s\n' "$line" | sed -E "s/^.* $name:([0-9]+)\] .*$/\1/")
  text=$(printf '%s\n' "$line" | sed -E "s/^.* $name:[0-9]+\] //")
  case $letter in
    I) severity=INFO ;;
    W) severity=WARNING ;;
    E) severity=ERROR ;;
  esac
  code=$(sed -n "${n}p" "$source")
  # The first string literal after LOG(SEVERITY) <<.
  literal=$(printf '%s\n' "$code" | sed -nE "s/.*LOG\($severity\) << \"([^\"]*)\".*/\1/p")
  if [ -z "$literal" ]; then
    echo "check_readme_logs: $readme quotes $name:$n as LOG($severity), but that line is: $code" >&2
    failed=1
  else
    case $text in
      "$literal"*) ;;
      *)
        echo "check_readme_logs: $readme quotes $name:$n as \"$text\", but it logs \"$literal\"..." >&2
        failed=1
        ;;
    esac
  fi
done <<LINES
$lines
LINES
[ "$failed" -eq 0 ] || exit 1
echo "check_readme_logs: $count log lines in $readme match $name"
