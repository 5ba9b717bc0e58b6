package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"syscall"
)

// noSuchProcess is a process id no target is expected to host.
const noSuchProcess = "conformance-no-such-process"

// unhandledName is a message name no target is expected to handle.
const unhandledName = "conformance.NoSuchMessage"

// msgShape is the request shape one generation of peers sends (docs/libprocess-wire.md §2.5).
type msgShape struct {
	id      string
	section string
	title   string
	// build returns the request bytes for a message to path from sender.
	build func(host, path, from string, body []byte) []byte
	// keepAlive says the connection must stay usable after the answer.
	keepAlive bool
}

// chunkedOne frames body as one chunk followed by the last-chunk, with the
// Transfer-Encoding header and the empty line before it; an empty body gives
// just the empty line (no body headers).
func chunkedOne(body []byte) string {
	if len(body) == 0 {
		return "\r\n"
	}
	return fmt.Sprintf("Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), body)
}

// shapes are the message request shapes of real peers, byte-exact.
func shapes() []msgShape {
	cpp := func(proto, host string) func(h, path, from string, body []byte) []byte {
		return func(h, path, from string, body []byte) []byte {
			var b strings.Builder
			fmt.Fprintf(&b, "POST %s %s\r\nUser-Agent: libprocess/%s\r\n", path, proto, from)
			if proto == "HTTP/1.1" {
				fmt.Fprintf(&b, "Libprocess-From: %s\r\nConnection: Keep-Alive\r\n", from)
				if host == "-" {
					b.WriteString("Host: \r\n")
				} else {
					fmt.Fprintf(&b, "Host: %s\r\n", h)
				}
			}
			b.WriteString(chunkedOne(body))
			return []byte(b.String())
		}
	}
	return []msgShape{
		{"mesos-0.22", "§2.5", "Mesos 0.22-1.11: HTTP/1.1, empty Host, chunked body", cpp("HTTP/1.1", "-"), true},
		{"mesos-2020", "§2.5", "Mesos after Nov 2020: HTTP/1.1, Host, chunked body", cpp("HTTP/1.1", "host"), true},
		{"pre-0.22", "§2.5", "Mesos before 0.22: HTTP/1.0, User-Agent only, chunked body", cpp("HTTP/1.0", ""), false},
		{"mesos-go", "§2.5", "mesos-go messenger: Libprocess-From, Content-Type, Content-Length", func(h, path, from string, body []byte) []byte {
			return []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: %d\r\n"+
				"Connection: Keep-Alive\r\nContent-Type: application/x-protobuf\r\nLibprocess-From: %s\r\nAccept-Encoding: gzip\r\n\r\n%s",
				path, h, len(body), from, body))
		}, true},
		{"libprocess-from", "§2.1", "POST with only Libprocess-From is a message", func(h, path, from string, body []byte) []byte {
			return httpRequest("POST", path, h, body, "Libprocess-From: "+from)
		}, true},
		{"user-agent", "§2.1", "POST with only User-Agent: libprocess/<from> is a message", func(h, path, from string, body []byte) []byte {
			return httpRequest("POST", path, h, body, "User-Agent: libprocess/"+from)
		}, true},
	}
}

// fakeSender is a well-formed sender UPID for cases that expect no reply.
const fakeSender = PeerID + "@127.0.0.1:1"

// expectAccepted fails the case unless r is "202" with an empty body.
func (t *T) expectAccepted(r *response) {
	if r.Code != 202 || len(r.Body) != 0 {
		t.Fatalf("%s", r.summary())
	}
}

// messageCases are the checks of inbound message handling (docs/libprocess-wire.md §2).
func messageCases() []Case {
	var cs []Case
	for _, sh := range shapes() {
		cls := "msg.shape."
		if sh.section == "§2.1" {
			cls = "msg.classify."
		}
		for _, empty := range []bool{false, true} {
			id := cls + sh.id
			title := sh.title + ": answered 202"
			if empty {
				id += "-empty"
				title = sh.title + ", empty body: answered 202"
			}
			cs = append(cs, Case{ID: id, Section: sh.section, Group: GroupLibprocess, Title: title, Run: func(t *T) {
				o := t.Options()
				body := []byte(t.unique())
				if empty {
					body = nil
				}
				req := sh.build(o.Target, "/"+o.Process+"/"+unhandledName, fakeSender, body)
				t.Expect("202 with an empty body%s", map[bool]string{true: ", connection still usable", false: ""}[sh.keepAlive])
				c := t.dial()
				r, err := c.roundTrip(req)
				if err != nil {
					t.Fatalf("%v", err)
				}
				t.expectAccepted(r)
				if sh.keepAlive {
					r2, err := c.roundTrip(req)
					if err != nil {
						t.Fatalf("first %s; second message on the same connection: %v", r.summary(), err)
					}
					t.expectAccepted(r2)
				}
				t.Seen("%s", r.summary())
			}})
		}
		cs = append(cs, Case{ID: "msg.deliver." + sh.id, Section: "§2.2", Group: GroupLibprocess,
			Title: sh.title + ": delivered, sender taken from the headers", Run: func(t *T) {
				ping, pong := t.needPing()
				o := t.Options()
				p := t.peer()
				body := []byte(t.unique())
				t.Expect("202, then %s with body %q at %s", pong, body, p.UPID())
				mark := p.mark()
				r := t.roundTrip(sh.build(o.Target, "/"+o.Process+"/"+ping, p.UPID(), body))
				t.expectAccepted(r)
				in, err := p.waitBody(t.Context(), mark, pong, body)
				if err != nil {
					t.Fatalf("%s; %v", r.summary(), err)
				}
				t.Seen("%q on peer connection %d", in.Req.RequestLine, in.Conn)
			}})
	}
	cs = append(cs,
		Case{ID: "msg.classify.get-not-message", Section: "§2.1", Group: GroupLibprocess,
			Title: "GET with Libprocess-From is HTTP, not a message", Run: func(t *T) {
				o := t.Options()
				t.Expect("not 202 (served as an HTTP request)")
				r := t.get("/"+o.Process+"/"+unhandledName, "Libprocess-From: "+fakeSender, "User-Agent: libprocess/"+fakeSender)
				if r.Code == 202 {
					t.Fatalf("%s", r.summary())
				}
				t.Seen("%s", r.summary())
			}},
		Case{ID: "msg.classify.plain-post", Section: "§2.1", Group: GroupLibprocess,
			Title: "POST without Libprocess-From or libprocess User-Agent is HTTP", Run: func(t *T) {
				o := t.Options()
				t.Expect("not 202 (served as an HTTP request)")
				r := t.roundTrip(httpRequest("POST", "/"+o.Process+"/"+unhandledName, o.Target, []byte("x"), "User-Agent: curl/8.0"))
				if r.Code == 202 {
					t.Fatalf("%s", r.summary())
				}
				t.Seen("%s", r.summary())
			}},
		Case{ID: "msg.answer.unknown-process", Section: "§2.4", Group: GroupLibprocess,
			Title: "message to an unknown process is answered 404", Run: func(t *T) {
				o := t.Options()
				t.Expect("404")
				r := t.roundTrip(httpRequest("POST", "/"+noSuchProcess+"/"+unhandledName, o.Target, []byte("x"), "Libprocess-From: "+fakeSender))
				if r.Code != 404 {
					t.Fatalf("%s", r.summary())
				}
				t.Seen("%s", r.summary())
			}},
		Case{ID: "msg.answer.content-length-zero", Section: "§2.4, §11.2", Group: GroupLibprocess,
			Title: "202 answer carries Content-Length: 0 and no body", Run: func(t *T) {
				o := t.Options()
				t.Expect("202 with Content-Length: 0")
				r := t.roundTrip(httpRequest("POST", "/"+o.Process+"/"+unhandledName, o.Target, []byte("x"), "Libprocess-From: "+fakeSender))
				cl, ok := r.Headers.get("Content-Length")
				if r.Code != 202 || !ok || cl != "0" || r.Chunked {
					t.Fatalf("%s, Content-Length %q (present %v), chunked %v", r.summary(), cl, ok, r.Chunked)
				}
				t.Seen("%s, Content-Length: %s", r.summary(), cl)
			}},
		Case{ID: "msg.answer.no-leading-slash", Section: "§2.4", Group: GroupLibprocess,
			Title: "message to target * is answered 400 \"Request URL path must start with '/'\", connection kept", Run: func(t *T) {
				pathlessCase(t, "*")
			}},
		Case{ID: "msg.answer.absolute-no-path", Section: "§2.4", Group: GroupLibprocess,
			Title: "message to an absolute URL without a path is answered 400, connection kept", Run: func(t *T) {
				pathlessCase(t, "http://"+t.Options().Target)
			}},
		Case{ID: "msg.answer.unreadable-target", Section: "§2.4", Group: GroupLibprocess,
			Title: "message to a target that is not a URL (POST <id>/<name>) is answered 400 or the connection closes unanswered", Run: func(t *T) {
				o := t.Options()
				target := o.Process + "/" + unhandledName
				t.Expect("POST %s: 400, or the connection closed without an answer (C++)", target)
				c := t.dial()
				if err := c.write(shapes()[0].build(o.Target, target, fakeSender, []byte("x"))); err != nil {
					t.Fatalf("%v", err)
				}
				r, err := c.readResponse()
				switch {
				case err != nil && r == nil && (errors.Is(err, errClosedBeforeResponse) || errors.Is(err, syscall.ECONNRESET)):
					t.Seen("closed without an answer (%v)", err)
				case err != nil:
					t.Fatalf("%v", err)
				case r.Code != 400:
					t.Fatalf("%s", r.summary())
				default:
					t.Seen("%s %q", r.summary(), abbreviate(r.Body))
				}
			}},
		Case{ID: "msg.answer.absolute-form", Section: "§2.4", Group: GroupLibprocess,
			Title: "message to an absolute-form target (POST http://host:port/<id>/<name>) is answered 202", Run: func(t *T) {
				o := t.Options()
				target := "http://" + o.Target + "/" + o.Process + "/" + unhandledName
				t.Expect("202 for POST %s, connection still usable", target)
				c := t.dial()
				var got []string
				for i := 0; i < 2; i++ {
					r, err := c.roundTrip(shapes()[0].build(o.Target, target, fakeSender, []byte(t.unique())))
					if err != nil {
						t.Fatalf("%v, then %v", got, err)
					}
					got = append(got, r.summary())
					t.expectAccepted(r)
				}
				t.Seen("%v", got)
			}},
		Case{ID: "msg.deliver.absolute-form", Section: "§2.2, §2.4", Group: GroupLibprocess,
			Title: "message to an absolute-form target is delivered to the process its URL path names", Run: func(t *T) {
				ping, pong := t.needPing()
				o := t.Options()
				p := t.peer()
				body := []byte(t.unique())
				target := "http://" + o.Target + "/" + o.Process + "/" + ping
				t.Expect("202 for POST %s, then %s with body %q", target, pong, body)
				t.expectEchoed(p, messageRequest(o.Target, target, p.UPID(), body), pong, body)
			}},
		Case{ID: "msg.answer.unreadable-body", Section: "§2.4", Group: GroupLibprocess,
			Title: "message whose chunked body cannot be read is answered 500", Run: func(t *T) {
				o := t.Options()
				t.Expect("500")
				req := "POST /" + o.Process + "/" + unhandledName + " HTTP/1.1\r\n" +
					"User-Agent: libprocess/" + fakeSender + "\r\nLibprocess-From: " + fakeSender + "\r\n" +
					"Connection: Keep-Alive\r\nHost: \r\nTransfer-Encoding: chunked\r\n\r\n" +
					"zz\r\nnot a chunk\r\n0\r\n\r\n"
				r := t.roundTrip([]byte(req))
				if r.Code != 500 {
					t.Fatalf("%s", r.summary())
				}
				t.Seen("%s", r.summary())
			}},
		Case{ID: "msg.answer.malformed-from", Section: "§1.2, §2.4", Group: GroupLibprocess,
			Title: "malformed Libprocess-From gets a status line and the connection stays usable", Run: func(t *T) {
				o := t.Options()
				t.Expect("a status line, then 202 for a well-formed message on the same connection")
				c := t.dial()
				bad, err := c.roundTrip(httpRequest("POST", "/"+o.Process+"/"+unhandledName, o.Target, []byte("x"), "Libprocess-From: not-a-upid"))
				if err != nil {
					t.Fatalf("%v", err)
				}
				r, err := c.roundTrip(httpRequest("POST", "/"+o.Process+"/"+unhandledName, o.Target, []byte("x"), "Libprocess-From: "+fakeSender))
				if err != nil {
					t.Fatalf("%s, then %v", bad.summary(), err)
				}
				t.expectAccepted(r)
				t.Seen("%s, then %s", bad.summary(), r.summary())
			}},
		Case{ID: "msg.receiver.percent-encoded", Section: "§1.4, §2.2", Group: GroupLibprocess,
			Title: "percent-encoded receiver id is decoded", Run: func(t *T) {
				o := t.Options()
				path := "/" + percentEncodeFirst(o.Process) + "/" + unhandledName
				t.Expect("202 for POST %s", path)
				r := t.roundTrip(httpRequest("POST", path, o.Target, []byte("x"), "Libprocess-From: "+fakeSender))
				t.expectAccepted(r)
				t.Seen("%s", r.summary())
			}},
		Case{ID: "msg.deliver.percent-encoded", Section: "§1.4, §2.2", Group: GroupLibprocess,
			Title: "message to a percent-encoded receiver id is delivered", Run: func(t *T) {
				ping, pong := t.needPing()
				o := t.Options()
				p := t.peer()
				body := []byte(t.unique())
				path := "/" + percentEncodeFirst(o.Process) + "/" + ping
				t.Expect("202 for POST %s, then %s with body %q", path, pong, body)
				t.expectEchoed(p, httpRequest("POST", path, o.Target, body, "Libprocess-From: "+p.UPID()), pong, body)
			}},
		Case{ID: "msg.deliver.from-precedence", Section: "§2.2", Group: GroupLibprocess,
			Title: "Libprocess-From (whitespace-trimmed) wins over User-Agent", Run: func(t *T) {
				ping, pong := t.needPing()
				o := t.Options()
				p := t.peer()
				body := []byte(t.unique())
				t.Expect("202, then %s with body %q at %s", pong, body, p.UPID())
				t.expectEchoed(p, httpRequest("POST", "/"+o.Process+"/"+ping, o.Target, body,
					"User-Agent: libprocess/"+fakeSender, "Libprocess-From: \t "+p.UPID()+" \t"), pong, body)
			}},
		Case{ID: "msg.name.slashes", Section: "§2.2", Group: GroupLibprocess,
			Title: "message name may contain slashes", Run: func(t *T) {
				o := t.Options()
				t.Expect("202")
				r := t.roundTrip(httpRequest("POST", "/"+o.Process+"/conformance/a/b", o.Target, []byte("x"), "Libprocess-From: "+fakeSender))
				t.expectAccepted(r)
				t.Seen("%s", r.summary())
			}},
		Case{ID: "msg.body.chunked-multi", Section: "§2.3", Group: GroupLibprocess,
			Title: "chunked body in several chunks (with ping: delivered whole)", Run: func(t *T) {
				bodyCase(t, true)
			}},
		Case{ID: "msg.body.fixed-binary", Section: "§2.3", Group: GroupLibprocess,
			Title: "Content-Length body with all 256 byte values (with ping: delivered intact)", Run: func(t *T) {
				bodyCase(t, false)
			}},
		Case{ID: "msg.deliver.upid-trailing-junk", Section: "§1.2", Group: GroupLibprocess,
			Title: "sender UPID with junk after the port digits is accepted (port = leading digits)", Run: func(t *T) {
				ping, pong := t.needPing()
				o := t.Options()
				p := t.peer()
				from := p.UPID() + "junk"
				body := []byte(t.unique())
				t.Expect("202 for Libprocess-From %q, then %s with body %q at %s", from, pong, body, p.UPID())
				t.expectEchoed(p, messageRequest(o.Target, "/"+o.Process+"/"+ping, from, body), pong, body)
			}},
		Case{ID: "msg.deliver.upid-hostname", Section: "§1.2", Group: GroupLibprocess,
			Title: "sender UPID with a hostname is resolved to IPv4", Run: func(t *T) {
				ping, pong := t.needPing()
				o := t.Options()
				p := t.peer()
				host, port, _ := strings.Cut(p.Addr(), ":")
				if host != "127.0.0.1" {
					t.Skipf("the suite's peer listens on %s, not loopback, so no hostname is known to resolve to it", host)
				}
				from := PeerID + "@localhost:" + port
				body := []byte(t.unique())
				t.Expect("202 for Libprocess-From %q, then %s with body %q", from, pong, body)
				t.expectEchoed(p, messageRequest(o.Target, "/"+o.Process+"/"+ping, from, body), pong, body)
			}},
		Case{ID: "msg.pipeline.mixed", Section: "§2.4, §2.5, §5.1", Group: GroupLibprocess,
			Title: "messages (Mesos 0.22 shape) and HTTP requests pipelined on one connection are answered in order", Run: func(t *T) {
				o := t.Options()
				sh := shapes()[0]
				reqs := [][]byte{
					sh.build(o.Target, "/"+o.Process+"/"+unhandledName, fakeSender, []byte("one")),
					sh.build(o.Target, "/"+o.Process+"/"+unhandledName, fakeSender, nil),
					httpRequest("GET", badTimeout("conformance-a"), o.Target, nil),
					sh.build(o.Target, "/"+noSuchProcess+"/"+unhandledName, fakeSender, []byte("two")),
					httpRequest("GET", "/__processes__", o.Target, nil),
					httpRequest("GET", "/help/"+noSuchProcess, o.Target, nil),
					sh.build(o.Target, "/"+o.Process+"/"+unhandledName, fakeSender, []byte("three")),
				}
				t.expectPipelined(bytes.Join(reqs, nil), []int{202, 202, 400, 404, 200, 404, 202})
			}},
		Case{ID: "msg.after-http.mesos-0.22", Section: "§2.5, §5.1", Group: GroupLibprocess,
			Title: "a Mesos 0.22-shaped message after an HTTP request on the same connection is answered 202", Run: func(t *T) {
				o := t.Options()
				t.Expect("200 for GET /__processes__, then 202 for the message, then 200 again on the same connection")
				c := t.dial()
				var got []string
				for i, req := range [][]byte{
					httpRequest("GET", "/__processes__", o.Target, nil),
					shapes()[0].build(o.Target, "/"+o.Process+"/"+unhandledName, fakeSender, []byte("x")),
					httpRequest("GET", "/__processes__", o.Target, nil),
				} {
					r, err := c.roundTrip(req)
					if err != nil {
						t.Fatalf("%v, then %v", got, err)
					}
					got = append(got, r.summary())
					if want := []int{200, 202, 200}[i]; r.Code != want {
						t.Fatalf("%v", got)
					}
				}
				t.Seen("%v", got)
			}},
		Case{ID: "msg.pipeline.order", Section: "§2.4", Group: GroupLibprocess,
			Title: "pipelined messages are answered in request order", Run: func(t *T) {
				o := t.Options()
				paths := []string{"/" + o.Process + "/" + unhandledName, "/" + noSuchProcess + "/a", "/" + o.Process + "/" + unhandledName, "/" + noSuchProcess + "/b"}
				var all []byte
				for _, p := range paths {
					all = append(all, httpRequest("POST", p, o.Target, []byte("x"), "Libprocess-From: "+fakeSender)...)
				}
				t.expectPipelined(all, []int{202, 404, 202, 404})
			}},
		Case{ID: "msg.head.bare-lf", Section: "§2.4, §5.1", Group: GroupLibprocess,
			Title: "requests whose lines end in a bare LF are answered, in request order", Run: func(t *T) {
				o := t.Options()
				lf := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }
				sh := shapes()[0]
				reqs := [][]byte{
					lf(sh.build(o.Target, "/"+o.Process+"/"+unhandledName, fakeSender, nil)),
					lf(httpRequest("GET", "/__processes__", o.Target, nil)),
					lf(sh.build(o.Target, "/"+noSuchProcess+"/"+unhandledName, fakeSender, nil)),
					lf(httpRequest("GET", badTimeout("conformance-lf"), o.Target, nil)),
					lf(httpRequest("POST", "/"+o.Process+"/"+unhandledName, o.Target, []byte("x"), "Libprocess-From: "+fakeSender)),
				}
				t.expectPipelined(bytes.Join(reqs, nil), []int{202, 200, 404, 400, 202})
			}},
		Case{ID: "msg.pipeline.half-close", Section: "§2.4, §3.2", Group: GroupLibprocess,
			Title: "messages pipelined before the peer shuts down its write side are all answered in order (with ping: all delivered)",
			Beyond: "closes the connection at EOF and drops the answers not yet written: its receive loop breaks on a zero-length read " +
				"(3rdparty/libprocess/src/process.cpp:814-815) and closes the socket (process.cpp:852), and SocketManager::close " +
				"deletes the socket's queued encoders and terminates its HttpProxy (process.cpp:2175-2205, 2251)",
			Run: func(t *T) {
				closeAfterBurst(t, false)
			}},
		Case{ID: "msg.pipeline.close-after-last", Section: "§3.2", Group: GroupLibprocess,
			Title: "messages pipelined by a peer that closes right after its last one are all delivered",
			Beyond: "drops a whole decoded batch when the peer has reset the connection: after decoding it asks the socket for the peer's " +
				"address and fails the receive loop when that fails (3rdparty/libprocess/src/process.cpp:827-830), " +
				"before any request of the batch reaches ProcessManager::handle (process.cpp:835)",
			Run: func(t *T) {
				closeAfterBurst(t, true)
			}},
	)
	return cs
}

// burstSize is how many messages the close-after-burst cases pipeline.
const burstSize = 500

// closeAfterBurst pipelines burstSize messages in the Mesos 0.22 shape in one
// write and then shuts down the write side (half) or closes the connection
// (full). Half: every message is answered 202, in order. Full: the answers cannot be read, so the case needs --ping and
// checks that every message was delivered (a receiver serves every request
// already read even when writing its 202 fails, docs/libprocess-wire.md §3.2).
func closeAfterBurst(t *T, full bool) {
	o := t.Options()
	var p *Peer
	name, from := unhandledName, fakeSender
	if o.Ping != "" {
		p = t.peer()
		name, from = o.Ping, p.UPID()
	} else if full {
		t.Skipf("needs --ping/--pong (delivery is only visible through the replies)")
	}
	bodies := make([]string, burstSize)
	var all []byte
	for i := range bodies {
		bodies[i] = t.unique()
		all = append(all, shapes()[0].build(o.Target, "/"+o.Process+"/"+name, from, []byte(bodies[i]))...)
	}
	mark := 0
	if p != nil {
		mark = p.mark()
	}
	c := t.dial()
	if full {
		t.Expect("%d %s replies after the suite closed the connection right after its %d pings", burstSize, o.Pong, burstSize)
		if err := c.write(all); err != nil {
			t.Fatalf("%v", err)
		}
		_ = c.Close()
	} else {
		t.Expect("%d answers 202 in order after the suite shut down its write side%s",
			burstSize, map[bool]string{true: "; every ping replied to", false: ""}[p != nil])
		// Answers are read while the burst is written, so neither side
		// waits on a full socket buffer.
		answers := make(chan error, 1)
		go func() {
			for i := 0; i < burstSize; i++ {
				r, err := c.readResponse()
				if err != nil {
					answers <- fmt.Errorf("%d of %d answers, then %w", i, burstSize, err)
					return
				}
				if r.Code != 202 {
					answers <- fmt.Errorf("answer %d: %s", i+1, r.summary())
					return
				}
			}
			answers <- nil
		}()
		if err := c.write(all); err != nil {
			t.Fatalf("%v", err)
		}
		if err := c.closeWrite(); err != nil {
			t.Fatalf("shutting down the write side: %v", err)
		}
		if err := <-answers; err != nil {
			t.Fatalf("%v", err)
		}
	}
	if p == nil {
		t.Seen("%d answers 202", burstSize)
		return
	}
	want := map[string]bool{}
	for _, b := range bodies {
		want[b] = true
	}
	for got := 0; got < burstSize; got++ {
		in, err := p.wait(t.Context(), mark, func(in Inbound) bool {
			return in.Req.Target == "/"+PeerID+"/"+o.Pong && want[string(in.Req.Body)]
		})
		if err != nil {
			t.Fatalf("%d of %d replies: %v", got, burstSize, err)
		}
		delete(want, string(in.Req.Body))
	}
	t.Seen("all %d delivered", burstSize)
}

// pathlessCase sends a message whose target has no path starting with '/'
// (C++ libprocess checks this first, Mesos ≥ 1.4) and expects 400 with C++'
// text, then a usable connection.
func pathlessCase(t *T, target string) {
	o := t.Options()
	const want = "Request URL path must start with '/'"
	t.Expect("POST %s: 400 %q, then 202 for a message on the same connection", target, want)
	c := t.dial()
	r, err := c.roundTrip(shapes()[0].build(o.Target, target, fakeSender, []byte("x")))
	if err != nil {
		t.Fatalf("%v", err)
	}
	if r.Code != 400 || string(r.Body) != want {
		t.Fatalf("%s %q", r.summary(), abbreviate(r.Body))
	}
	r2, err := c.roundTrip(shapes()[0].build(o.Target, "/"+o.Process+"/"+unhandledName, fakeSender, []byte("x")))
	if err != nil {
		t.Fatalf("%s, then %v", r.summary(), err)
	}
	t.expectAccepted(r2)
	t.Seen("%s %q, then %s", r.summary(), r.Body, r2.summary())
}

// badTimeout is a /metrics/snapshot request every target answers 400 with a
// body naming token (docs/libprocess-wire.md §6.3: "Invalid timeout '<token>': …").
func badTimeout(token string) string {
	return "/metrics/snapshot?timeout=" + token
}

// expectEchoed sends req, a ping message carrying body, and expects 202
// and then the target's pong with the same body at the suite's peer p.
func (t *T) expectEchoed(p *Peer, req []byte, pong string, body []byte) {
	mark := p.mark()
	r := t.roundTrip(req)
	t.expectAccepted(r)
	if _, err := p.waitBody(t.Context(), mark, pong, body); err != nil {
		t.Fatalf("%s; %v", r.summary(), err)
	}
	t.Seen("%s and the reply", r.summary())
}

// expectPipelined writes reqs in one write on a fresh connection and checks
// the statuses of the answers, in order.
func (t *T) expectPipelined(reqs []byte, want []int) {
	t.Expect("statuses %v in one write", want)
	c := t.dial()
	if err := c.write(reqs); err != nil {
		t.Fatalf("%v", err)
	}
	var got []int
	for range want {
		r, err := c.readResponse()
		if err != nil {
			t.Fatalf("statuses %v, then %v", got, err)
		}
		got = append(got, r.Code)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("statuses %v", got)
	}
	t.Seen("statuses %v", got)
}

// bodyCase sends a multi-chunk or fixed-length binary body; with ping/pong it
// checks the reply carries the same bytes.
func bodyCase(t *T, chunked bool) {
	o := t.Options()
	name, from := unhandledName, fakeSender
	var p *Peer
	if o.Ping != "" {
		p = t.peer()
		name, from = o.Ping, p.UPID()
	}
	var body []byte
	if chunked {
		body = []byte(t.unique() + strings.Repeat("-chunked", 300))
	} else {
		body = []byte(t.unique())
		for i := 0; i < 256; i++ {
			body = append(body, byte(i))
		}
	}
	path := "/" + o.Process + "/" + name
	var req []byte
	if chunked {
		var b strings.Builder
		fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nLibprocess-From: %s\r\nTransfer-Encoding: chunked\r\n\r\n", path, o.Target, from)
		third := len(body) / 3
		for _, part := range [][]byte{body[:third], body[third : 2*third], body[2*third:]} {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(part), part)
		}
		b.WriteString("0\r\n\r\n")
		req = []byte(b.String())
	} else {
		req = httpRequest("POST", path, o.Target, body, "Libprocess-From: "+from)
	}
	if p == nil {
		t.Expect("202 (no --ping: delivery not checked)")
	} else {
		t.Expect("202, then %s with the same %d body bytes", o.Pong, len(body))
	}
	mark := 0
	if p != nil {
		mark = p.mark()
	}
	r := t.roundTrip(req)
	t.expectAccepted(r)
	if p != nil {
		if _, err := p.waitBody(t.Context(), mark, o.Pong, body); err != nil {
			t.Fatalf("%s; %v", r.summary(), err)
		}
		t.Seen("%s and the reply with the same body", r.summary())
		return
	}
	t.Seen("%s", r.summary())
}

// percentEncodeFirst percent-encodes the first byte of id and escapes the
// rest as a path segment.
func percentEncodeFirst(id string) string {
	if id == "" {
		return ""
	}
	return fmt.Sprintf("%%%02X", id[0]) + url.PathEscape(id[1:])
}
