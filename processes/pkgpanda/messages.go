package pkgpanda

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/procpanda/procpanda/libprocess"
	"github.com/procpanda/procpanda/libprocess/protobuf"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
)

// Bounds on the replies to refused messages: a flood of calls with fake
// senders must not turn into as many outbound connections.
const (
	refusedRepliesPerSecond = 10
	refusedRepliesBurst     = 20
)

// replyBudget is a token bucket for replies to refused calls.
type replyBudget struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newReplyBudget(rate, burst float64) replyBudget {
	return replyBudget{rate: rate, burst: burst, tokens: burst}
}

// take reports whether a reply may be sent now.
func (b *replyBudget) take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// installMessages installs the PkgpandaCall message handler. A call is
// authenticated by its authorization field and answered with a
// PkgpandaResponse message to the sender's UPID. A body that does not
// decode, or a sender that is empty (libprocess delivers a malformed
// Libprocess-From as the empty UPID), is dropped and counted: nothing is
// dialled for it. Replies to refused calls (401/403) are rate-limited;
// the excess is dropped and counted.
func (p *Process) installMessages() error {
	name := proto.MessageName(&pb.PkgpandaCall{})
	if name == "" {
		return fmt.Errorf("installing the PkgpandaCall handler: the type is not registered")
	}
	p.lp.Install(name, func(m *libprocess.Message) {
		if m.From.IsZero() {
			p.m.noSender.Inc()
			p.log.Warn().Str("message", m.Name).Msg("dropping a PkgpandaCall without a valid sender to answer")
			return
		}
		call := &pb.PkgpandaCall{}
		if err := proto.Unmarshal(m.Body, call); err != nil {
			p.m.undecodable.Inc()
			p.log.Warn().Err(err).Str("from", m.From.String()).Msg("dropping a PkgpandaCall that does not decode")
			return
		}
		from := m.From
		c := p.authenticate(call.Authorization, nil)
		c.from = from
		call.Authorization = "" // never kept, logged or echoed
		var answered atomic.Bool
		answer := func(r *pb.PkgpandaResponse) {
			if !answered.Swap(true) {
				p.reply(from, r)
			}
		}
		p.contain("serving a PkgpandaCall message", func() {
			r := failInternal()
			r.Type, r.RequestId = call.Type, call.RequestId
			answer(r)
		}, func() { p.callWithTarball(context.Background(), call, c, answer) })
	})
	return nil
}

// reply sends r to the sender of a call.
func (p *Process) reply(to libprocess.UPID, r *pb.PkgpandaResponse) {
	if to.IsZero() {
		p.m.repliesDropped.Inc()
		return
	}
	if (r.Status == 401 || r.Status == 403) && !p.replies.take() {
		p.m.repliesDropped.Inc()
		return
	}
	if err := protobuf.Send(p.lp, to, r); err != nil {
		p.m.repliesDropped.Inc()
		p.log.Warn().Err(err).Str("to", to.String()).Str("request_id", logPrefix(r.RequestId)).Int("request_id_bytes", len(r.RequestId)).Msg("sending a PkgpandaResponse failed")
	}
}

// maxLoggedID is how much of a caller-chosen request id a log line
// carries: the caller picks its length (up to the message size limit),
// and a flood of failed replies must not become as many bytes of log.
const maxLoggedID = 128

// logPrefix returns at most the first maxLoggedID bytes of id.
func logPrefix(id string) string {
	if len(id) <= maxLoggedID {
		return id
	}
	return id[:maxLoggedID]
}
