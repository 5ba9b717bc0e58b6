# cmd/pkgpanda-module: the Mesos module that launches pkgpandad. Included
# by the top-level Makefile.
#
#   make module-test   build the supervision code and its tests with $(CXX)
#                      (no Mesos, no glog: the glue compiles against the stub
#                      headers in testing/) and run them, and check that the
#                      glue built as a shared library exports only the
#                      module symbol and that README.md's log lines name
#                      the code's; `make test` runs it
#   make module MESOS_PREFIX=/usr/local
#                      build $(MODULE_OUT)/libpkgpanda_module.so against an
#                      installed Mesos (include/ and lib/ under the prefix)

MODULE_SRC      := cmd/pkgpanda-module
MODULE_OUT      := $(BIN)/pkgpanda-module
MODULE_CXXFLAGS ?= -std=c++17 -O1 -g -Wall -Wextra -Werror -pthread
MODULE_SANITIZE ?= -fsanitize=address,undefined -fno-sanitize-recover=all
MODULE_FUZZ_ITERATIONS ?= 20000
# The library exports the module symbol alone (marked visible in
# pkgpanda_module.cpp): the agent needs nothing else from it.
MODULE_VISIBILITY := -fvisibility=hidden

MODULE_CORE  := supervisor spawn options escape
MODULE_TESTS := harness support supervisor_test spawn_test options_test
MODULE_HDRS  := $(wildcard $(MODULE_SRC)/*.hpp $(MODULE_SRC)/test/*.hpp)
MODULE_STUBS := $(shell find $(MODULE_SRC)/testing -name '*.h*' 2>/dev/null)

.PHONY: module module-test

module-test: $(MODULE_OUT)/module_test $(MODULE_OUT)/glue_test $(MODULE_OUT)/fake_child $(MODULE_OUT)/fuzz_options $(MODULE_OUT)/libpkgpanda_module_stub.so
	$(MODULE_OUT)/module_test
	$(MODULE_OUT)/glue_test
	sh $(MODULE_SRC)/test/check_exports.sh $(MODULE_OUT)/libpkgpanda_module_stub.so
	sh $(MODULE_SRC)/test/check_readme_logs.sh $(MODULE_SRC)/README.md $(MODULE_SRC)/pkgpanda_module.cpp
	$(MODULE_OUT)/fuzz_options $(MODULE_SRC)/testdata/fuzz/ParseOptions $(MODULE_FUZZ_ITERATIONS)

$(MODULE_OUT)/%.o: $(MODULE_SRC)/%.cpp $(MODULE_HDRS)
	@mkdir -p $(MODULE_OUT)
	$(CXX) $(MODULE_CXXFLAGS) -c -o $@ $<

$(MODULE_OUT)/%.o: $(MODULE_SRC)/test/%.cpp $(MODULE_HDRS)
	@mkdir -p $(MODULE_OUT)
	$(CXX) $(MODULE_CXXFLAGS) -c -o $@ $<

# The glue and its test see the stub Mesos and glog headers.
$(MODULE_OUT)/pkgpanda_module.o: $(MODULE_SRC)/pkgpanda_module.cpp $(MODULE_HDRS) $(MODULE_STUBS)
	@mkdir -p $(MODULE_OUT)
	$(CXX) $(MODULE_CXXFLAGS) -I$(MODULE_SRC)/testing -c -o $@ $<

$(MODULE_OUT)/glue_test.o: $(MODULE_SRC)/test/glue_test.cpp $(MODULE_HDRS) $(MODULE_STUBS)
	@mkdir -p $(MODULE_OUT)
	$(CXX) $(MODULE_CXXFLAGS) -I$(MODULE_SRC)/testing -c -o $@ $<

$(MODULE_OUT)/module_test: $(patsubst %,$(MODULE_OUT)/%.o,$(MODULE_CORE) $(MODULE_TESTS))
	$(CXX) $(MODULE_CXXFLAGS) -o $@ $^

$(MODULE_OUT)/glue_test: $(patsubst %,$(MODULE_OUT)/%.o,$(MODULE_CORE) pkgpanda_module harness support glue_test)
	$(CXX) $(MODULE_CXXFLAGS) -o $@ $^

$(MODULE_OUT)/fake_child: $(MODULE_SRC)/test/fake_child.cpp
	@mkdir -p $(MODULE_OUT)
	$(CXX) $(MODULE_CXXFLAGS) -o $@ $<

$(MODULE_OUT)/fuzz_options: $(MODULE_SRC)/options.cpp $(MODULE_SRC)/escape.cpp $(MODULE_SRC)/test/fuzz_options.cpp $(MODULE_HDRS)
	@mkdir -p $(MODULE_OUT)
	$(CXX) $(MODULE_CXXFLAGS) $(MODULE_SANITIZE) -o $@ $(MODULE_SRC)/options.cpp $(MODULE_SRC)/escape.cpp $(MODULE_SRC)/test/fuzz_options.cpp

# The library as `make module` builds it (same sources, same visibility),
# against the stub headers: check_exports.sh reads its symbol table.
$(MODULE_OUT)/libpkgpanda_module_stub.so: $(patsubst %,$(MODULE_SRC)/%.cpp,$(MODULE_CORE) pkgpanda_module) $(MODULE_HDRS) $(MODULE_STUBS)
	@mkdir -p $(MODULE_OUT)
	$(CXX) $(MODULE_CXXFLAGS) -fPIC -shared $(MODULE_VISIBILITY) -I$(MODULE_SRC)/testing -o $@ \
	  $(patsubst %,$(MODULE_SRC)/%.cpp,$(MODULE_CORE) pkgpanda_module)

# module builds the shared library the agent loads, as Mesos module authors
# do: against the headers and libmesos of an installed Mesos of exactly the
# agent's version (MESOS_VERSION must match; see README.md). An install made
# with --enable-install-module-dependencies keeps glog, protobuf and boost
# headers under lib/mesos/3rdparty; MODULE_EXTRA_FLAGS adds compiler flags
# (-I...), MODULE_EXTRA_LIBS linker flags.
MESOS_PREFIX       ?=
MODULE_EXTRA_FLAGS ?=
MODULE_EXTRA_LIBS  ?=
module:
	@test -n "$(MESOS_PREFIX)" || { echo "make module: set MESOS_PREFIX to an installed Mesos (the directory holding include/mesos and lib/libmesos.so)"; exit 2; }
	@test -f "$(MESOS_PREFIX)/include/mesos/module/anonymous.hpp" || { echo "make module: no include/mesos/module/anonymous.hpp under MESOS_PREFIX=$(MESOS_PREFIX)"; exit 2; }
	@mkdir -p $(MODULE_OUT)
	$(CXX) -std=c++17 -O2 -g -Wall -fPIC -shared -pthread $(MODULE_VISIBILITY) -D__STDC_FORMAT_MACROS \
	  -I$(MESOS_PREFIX)/include -I$(MESOS_PREFIX)/lib/mesos/3rdparty/include $(MODULE_EXTRA_FLAGS) \
	  -o $(MODULE_OUT)/libpkgpanda_module.so \
	  $(patsubst %,$(MODULE_SRC)/%.cpp,$(MODULE_CORE) pkgpanda_module) \
	  -L$(MESOS_PREFIX)/lib -L$(MESOS_PREFIX)/lib/mesos/3rdparty/lib -lmesos $(MODULE_EXTRA_LIBS)
	@echo "built $(MODULE_OUT)/libpkgpanda_module.so"
