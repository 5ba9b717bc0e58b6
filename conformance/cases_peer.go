package conformance

import (
	"fmt"
	"regexp"
	"strings"
)

// pingOnce sends ping with body from the peer's UPID on a fresh connection and
// waits for the pong carrying the same body.
func pingOnce(t *T, body []byte) Inbound {
	ping, pong := t.needPing()
	o := t.Options()
	p := t.peer()
	mark := p.mark()
	r := t.roundTrip(messageRequest(o.Target, "/"+o.Process+"/"+ping, p.UPID(), body))
	t.expectAccepted(r)
	in, err := p.waitBody(t.Context(), mark, pong, body)
	if err != nil {
		t.Fatalf("ping answered %s; %v", r.summary(), err)
	}
	return in
}

// messageRequest is a message in the outbound format of docs/libprocess-wire.md §3.1, which the
// suite uses whenever it sends as a libprocess peer.
func messageRequest(host, path, from string, body []byte) []byte {
	return []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nUser-Agent: libprocess/%s\r\nLibprocess-From: %s\r\nConnection: Keep-Alive\r\nHost: %s\r\n%s",
		path, from, from, host, chunkedOne(body)))
}

// expectedHead is the docs/libprocess-wire.md §3.1 head of a message named name from `from` to the
// suite's peer.
func expectedHead(p *Peer, name, from string, body []byte) string {
	h := fmt.Sprintf("POST /%s/%s HTTP/1.1\r\nUser-Agent: libprocess/%s\r\nLibprocess-From: %s\r\nConnection: Keep-Alive\r\nHost: %s\r\n",
		PeerID, name, from, from, p.Addr())
	if len(body) > 0 {
		h += "Transfer-Encoding: chunked\r\n"
	}
	return h + "\r\n"
}

// diff describes where got first differs from want.
func diff(want, got string) string {
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	return fmt.Sprintf("differs at byte %d: want …%q, got …%q (whole: %q)", i, tail(want, i), tail(got, i), got)
}

// tail returns up to 40 bytes of s from i.
func tail(s string, i int) string {
	if i > len(s) {
		i = len(s)
	}
	s = s[i:]
	if len(s) > 40 {
		s = s[:40]
	}
	return s
}

// senderFrom returns the target's sender UPID from a pong and checks its form.
func senderFrom(t *T, in Inbound) string {
	from, ok := in.Req.Headers.get("Libprocess-From")
	if !ok {
		t.Fatalf("reply has no Libprocess-From: %q", in.Req.Head)
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(t.Options().Process) + `@(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}:[0-9]+$`)
	if !re.MatchString(from) {
		t.Fatalf("Libprocess-From %q is not %s@a.b.c.d:port", from, t.Options().Process)
	}
	return from
}

// peerCases are the round trips with the suite as a libprocess peer (docs/libprocess-wire.md §3).
func peerCases() []Case {
	return []Case{
		{ID: "peer.roundtrip", Section: "§3.1", Group: GroupLibprocess,
			Title: "the target replies to the suite's own UPID", Run: func(t *T) {
				body := []byte(t.unique())
				t.Expect("reply with body %q", body)
				in := pingOnce(t, body)
				t.Seen("%q on peer connection %d", in.Req.RequestLine, in.Conn)
			}},
		{ID: "peer.outbound.from", Section: "§1.3, §3.1", Group: GroupLibprocess,
			Title: "the reply's sender is <process>@a.b.c.d:port", Run: func(t *T) {
				t.Expect("Libprocess-From %s@a.b.c.d:port", t.Options().Process)
				in := pingOnce(t, []byte(t.unique()))
				t.Seen("%q", senderFrom(t, in))
			}},
		{ID: "peer.outbound.request-line", Section: "§3.1", Group: GroupLibprocess,
			Title: "outbound request line is POST /<to-id>/<name> HTTP/1.1", Run: func(t *T) {
				o := t.Options()
				want := fmt.Sprintf("POST /%s/%s HTTP/1.1", PeerID, o.Pong)
				t.Expect("%q", want)
				in := pingOnce(t, []byte(t.unique()))
				if in.Req.RequestLine != want {
					t.Fatalf("%q", in.Req.RequestLine)
				}
				t.Seen("%q", in.Req.RequestLine)
			}},
		{ID: "peer.outbound.headers", Section: "§3.1", Group: GroupLibprocess,
			Title: "outbound head is byte-exact: User-Agent, Libprocess-From, Connection, Host, Transfer-Encoding", Run: func(t *T) {
				body := []byte(t.unique())
				t.Expect("the §3.1 head byte for byte")
				in := pingOnce(t, body)
				want := expectedHead(t.peer(), t.Options().Pong, senderFrom(t, in), body)
				if got := string(in.Req.Head); got != want {
					t.Fatalf("%s", diff(want, got))
				}
				t.Seen("%q", in.Req.Head)
			}},
		{ID: "peer.outbound.body", Section: "§3.1", Group: GroupLibprocess,
			Title: "outbound body is one chunk followed by the last-chunk", Run: func(t *T) {
				body := []byte(t.unique() + strings.Repeat(".", 100))
				want := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
				t.Expect("%q", want)
				in := pingOnce(t, body)
				if got := string(in.Req.RawBody); got != want {
					t.Fatalf("%s", diff(want, got))
				}
				t.Seen("%q", in.Req.RawBody)
			}},
		{ID: "peer.outbound.empty-body", Section: "§3.1", Group: GroupLibprocess,
			Title: "outbound message with an empty body has no body headers", Run: func(t *T) {
				t.Expect("the §3.1 head without Transfer-Encoding, no body bytes")
				in := pingOnce(t, nil)
				want := expectedHead(t.peer(), t.Options().Pong, senderFrom(t, in), nil)
				if got := string(in.Req.Raw); got != want {
					t.Fatalf("%s", diff(want, got))
				}
				t.Seen("%q", in.Req.Raw)
			}},
		{ID: "peer.outbound.persistent", Section: "§3.2", Group: GroupLibprocess,
			Title: "successive replies reuse one connection, or each goes over a connection the target closes once sent", Run: func(t *T) {
				// C++ keeps a persistent connection only to peers it is
				// linked to; an unlinked send uses a connection per burst,
				// closed when its queue drains. Either way the target must
				// not pile up connections.
				t.Expect("three replies on one peer connection, or each earlier connection closed by the target")
				p := t.peer()
				var conns []int
				for i := 0; i < 3; i++ {
					conns = append(conns, pingOnce(t, []byte(t.unique())).Conn)
				}
				for i := 1; i < len(conns); i++ {
					if conns[i] == conns[i-1] {
						continue
					}
					ctx, cancel := contextWithFraction(t.Context(), 2)
					err := p.waitEnded(ctx, conns[i-1])
					cancel()
					if err != nil {
						t.Fatalf("replies on peer connections %v; connection %d left open after the reply on %d: %v", conns, conns[i-1], conns[i], err)
					}
				}
				t.Seen("replies on peer connections %v", conns)
			}},
		{ID: "peer.outbound.order", Section: "§3.2, §10.1", Group: GroupLibprocess,
			Title: "replies to pipelined pings all arrive, in send order on each connection", Run: func(t *T) {
				ping, pong := t.needPing()
				o := t.Options()
				p := t.peer()
				const n = 10
				var all []byte
				index := map[string]int{}
				for i := 0; i < n; i++ {
					b := t.unique()
					index[b] = i
					all = append(all, messageRequest(o.Target, "/"+o.Process+"/"+ping, p.UPID(), []byte(b))...)
				}
				// Order holds per connection: replies a target sends over
				// several connections (C++ without a link, docs/libprocess-wire.md §3.2) may be
				// read in any order across them.
				t.Expect("%d replies, in send order on each peer connection", n)
				mark := p.mark()
				c := t.dial()
				if err := c.write(all); err != nil {
					t.Fatalf("%v", err)
				}
				for i := 0; i < n; i++ {
					r, err := c.readResponse()
					if err != nil {
						t.Fatalf("answer %d: %v", i+1, err)
					}
					t.expectAccepted(r)
				}
				last := map[int]int{} // peer connection → index of its last reply
				var seen []string
				for got := 0; got < n; got++ {
					in, err := p.wait(t.Context(), mark, func(in Inbound) bool {
						_, ok := index[string(in.Req.Body)]
						return in.Req.Target == "/"+PeerID+"/"+pong && ok
					})
					if err != nil {
						t.Fatalf("%d of %d replies (%v): %v", got, n, seen, err)
					}
					i := index[string(in.Req.Body)]
					delete(index, string(in.Req.Body))
					seen = append(seen, fmt.Sprintf("%d@conn%d", i, in.Conn))
					if prev, ok := last[in.Conn]; ok && prev > i {
						t.Fatalf("reply %d after reply %d on peer connection %d (%v)", i, prev, in.Conn, seen)
					}
					last[in.Conn] = i
				}
				t.Seen("%v", seen)
			}},
		{ID: "peer.outbound.no-wait", Section: "§3.2, §11.3", Group: GroupLibprocess,
			Title: "the target does not wait for answers to its messages (silent peer)", Run: func(t *T) {
				p := t.peer()
				p.SetSilent(true)
				t.Cleanup(func() { p.SetSilent(false) })
				t.Expect("two replies although the suite answers neither")
				a := pingOnce(t, []byte(t.unique()))
				b := pingOnce(t, []byte(t.unique()))
				t.Seen("replies on peer connections %d and %d", a.Conn, b.Conn)
			}},
		{ID: "peer.reconnect", Section: "§3.3, §3.4", Group: GroupLibprocess,
			Title: "after the suite closes the connection, the next reply arrives on a fresh connection", Run: func(t *T) {
				first := pingOnce(t, []byte(t.unique()))
				p := t.peer()
				t.Expect("a reply on a peer connection other than %d after closing it", first.Conn)
				// The target may have closed it already (a connection per
				// burst, docs/libprocess-wire.md §3.2); then there is nothing to close.
				if err := p.CloseConn(first.Conn); err != nil {
					t.Fatalf("%v", err)
				}
				if err := p.waitEnded(t.Context(), first.Conn); err != nil {
					t.Fatalf("%v", err)
				}
				// At-most-once (docs/libprocess-wire.md §3.3): a reply written before the target noticed
				// the close may be lost, so ping until one arrives.
				ping, pong := t.needPing()
				o := t.Options()
				mark := p.mark()
				for attempt := 1; ; attempt++ {
					body := []byte(t.unique())
					r := t.roundTrip(messageRequest(o.Target, "/"+o.Process+"/"+ping, p.UPID(), body))
					t.expectAccepted(r)
					ctx, cancel := contextWithFraction(t.Context(), 10)
					in, err := p.waitBody(ctx, mark, pong, body)
					cancel()
					if err == nil {
						if in.Conn == first.Conn {
							t.Fatalf("reply on the closed connection %d", in.Conn)
						}
						t.Seen("reply on peer connection %d (attempt %d)", in.Conn, attempt)
						return
					}
					if t.Context().Err() != nil {
						t.Fatalf("no reply after closing connection %d (%d attempts)", first.Conn, attempt)
					}
				}
			}},
	}
}
