package libprocess

import (
	"os"
	"testing"

	"github.com/procpanda/procpanda/internal/testlog"
)

func TestMain(m *testing.M) {
	testlog.QuietGlog() // the mesos-go peer tests link glog
	os.Exit(m.Run())
}
