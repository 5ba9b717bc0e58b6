package pkgpanda

// Reuse of read-only CLI results.
//
// `pkgpanda list` and `pkgpanda active` are pure functions of a few things
// on disk (docs/pkgpanda-cli.md §5.4):
//
//   - list: whether the repository folder exists and the names of its
//     entries;
//   - active: whether <root>/active exists and, for each entry of it, the
//     entry's name, the text of the link and whether the link's target is
//     itself a symbolic link (the CLI reports the base name of the
//     link's resolved target; when the target is not a link, or is
//     missing, that is the base name of the link's text).
//
// Before each run the cache takes a fingerprint of those inputs with
// stat(2) ((device, inode, type, size, mtime, ctime) of the repository
// folder; of <root> and of <root>/active; lstat of each link's target),
// runs the CLI, and keeps the parsed result with the fingerprint. A later
// read stats the same paths again and reuses the result only if every
// stamp is identical.
//
// Why that is sound. The kernel updates a directory's mtime and ctime on
// every entry created, removed or renamed in it, and a changed symbolic
// link is always a new link (a new entry). A folder swapped for another
// (activation renames active.new to active) or a path whose symbolic
// links were re-pointed resolves to another (device, inode). ctime cannot
// be set from user space: moving an mtime back with utimes(2) moves the
// ctime forward. So any change to an input after the fingerprint was
// taken changes a stamp -- provided the change gets a later timestamp
// than the one recorded. Timestamps have a granularity G (the kernel's
// coarse clock tick for fine-grained filesystems, a second or two where
// only seconds are stored); a change within G of the recorded stamp may
// keep it. Hence the rule: a result is kept only if every recorded mtime
// and ctime is at least G older than the moment the fingerprint was taken
// (before the CLI started). A change after that moment then gets a stamp
// above the recorded one, and the next read sees it. Because the
// fingerprint is taken before the run, a change during the run is caught
// too: the result may predate it, but its fingerprint does not match what
// the next read sees.
//
// Where the rule may not hold, the CLI runs every time:
//
//   - stamps within G of the fingerprint (G is fineGranularity, or
//     coarseGranularity when a stamp has no sub-second part, as on
//     filesystems that store seconds), or in the future;
//   - a filesystem not known to keep directory timestamps and inode
//     numbers locally and at once (NFS and other network filesystems
//     cache attributes, FUSE ones are whatever their daemon says): only
//     the types in trustedFilesystems are used;
//   - the wall clock stepped back since the fingerprint (checked against
//     the monotonic clock), as stamps would then go back too;
//   - any error while taking the fingerprint, and failed runs (they are
//     never kept).
//
// Mutations through pkgpandad do not depend on stamps: when a mutation
// ends (before it releases Process.rw) it bumps a generation counter and
// drops every result, and a run started in an older generation stores
// nothing. Reads and mutations are ordered by Process.rw, so a reader
// sees the state before a mutation or after it, never a half-done one,
// and the checks a mutation makes before it changes anything (DELETE
// /repository/<id>, PUT /active/) reuse results like any read.
//
// Identical reads that arrive while a result is being computed wait for
// that run (a flight) instead of starting their own. A flight's child is
// cancelled only when every reader waiting for it has gone.
//
// The package's pkginfo.json (GET /repository/<id>) is read in-process on
// every request and is not cached.
//
// The same rule spares the look for an interrupted activation (lock.go)
// that precedes every mutation and every read of the active set: what it
// looks for (an entry X.new of <root>, or an entry X.old without X) can
// only appear by creating, removing or renaming an entry of <root>, or by
// swapping <root> for another folder, all of which change <root>'s stamp.
// So a look that found nothing is remembered with the stamp of <root>
// taken before it, and the next look only stats <root> while that stamp
// is unchanged (and trusted, as above). A look that found leftovers is
// never remembered, and mutations through pkgpandad forget the last one.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/procpanda/procpanda/libprocess"
	pb "github.com/procpanda/procpanda/processes/pkgpanda/pkgpandapb"
	"github.com/rs/zerolog"
)

// Timestamp granularities assumed by the reuse rule. fineGranularity
// covers the kernel's coarse clock (one tick: 10 ms at HZ=100) with room
// to spare; coarseGranularity covers filesystems storing whole seconds
// (and FAT's two).
const (
	fineGranularity   = 50 * time.Millisecond
	coarseGranularity = 2 * time.Second
)

// cacheKey names one cached read.
type cacheKey int

const (
	keyList   cacheKey = iota // pkgpanda list
	keyActive                 // pkgpanda active
	numKeys
)

func (k cacheKey) String() string {
	if k == keyList {
		return "list"
	}
	return "active"
}

// fileStamp is what stat(2) says about one input path.
type fileStamp struct {
	exists       bool
	dev, ino     uint64
	mode         uint32 // file type and permission bits
	link         bool   // a symbolic link (only without follow)
	size         int64
	mtime, ctime int64 // nanoseconds since the epoch
}

// fsStat stats path (following a final symbolic link if follow); a
// missing path is a zero stamp and no error.
type fsStat func(path string, follow bool) (fileStamp, error)

// fsType returns the filesystem magic (statfs f_type) of path's
// filesystem.
type fsType func(path string) (uint32, error)

// probe is one path of a fingerprint.
type probe struct {
	path   string
	follow bool
}

// fingerprint is the state of a read's inputs before its run.
type fingerprint struct {
	probes []probe
	stamps []fileStamp
	taken  time.Time // with its monotonic reading
}

// cacheEntry is a kept result.
type cacheEntry struct {
	fp  *fingerprint
	ids []string
}

// flight is one run that identical reads share.
type flight struct {
	gen     uint64
	ctx     context.Context
	cancel  context.CancelFunc
	waiters int // guarded by resultCache.mu
	done    chan struct{}
	ids     []string
	fail    *pb.PkgpandaResponse
}

// resultCache keeps the results of `list` and `active`; see the comment
// at the top of this file for the rule.
type resultCache struct {
	enabled          bool
	root, repository string
	stat             fsStat
	fsType           fsType
	log              zerolog.Logger

	mu      sync.Mutex
	gen     uint64
	entries [numKeys]cacheEntry
	flights [numKeys]*flight
	clean   *fingerprint // the install root's when last found without leftovers

	m cacheMetrics
}

// cacheMetrics are the cache's counters; see Start for their names.
type cacheMetrics struct {
	hits, misses, shared, stale, untrusted, invalidations *libprocess.Counter
}

func (m *cacheMetrics) all() []namedCounter {
	return []namedCounter{
		{"pkgpanda/cache/hits", &m.hits},
		{"pkgpanda/cache/misses", &m.misses},
		{"pkgpanda/cache/shared_runs", &m.shared},
		{"pkgpanda/cache/stale", &m.stale},
		{"pkgpanda/cache/untrusted", &m.untrusted},
		{"pkgpanda/cache/invalidations", &m.invalidations},
	}
}

// newResultCache returns the cache of cfg's process; with
// cfg.DisableCache every read runs the CLI.
func newResultCache(cfg *Config, log zerolog.Logger) *resultCache {
	c := &resultCache{
		log:        log,
		enabled:    !cfg.DisableCache,
		root:       absFrom(cfg.Dir, cfg.root()),
		repository: absFrom(cfg.Dir, cfg.repository()),
		stat:       statPath,
		fsType:     statfsType,
	}
	for _, n := range c.m.all() {
		*n.ptr = &libprocess.Counter{}
	}
	return c
}

// absFrom resolves a relative path the child would resolve against its
// working directory dir (empty: ours).
func absFrom(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	if dir == "" {
		if wd, err := os.Getwd(); err == nil {
			dir = wd
		}
	}
	return dir + string(filepath.Separator) + p
}

// register replaces the counters with the runtime's.
func (c *resultCache) register(m *libprocess.Metrics) {
	for _, n := range c.m.all() {
		*n.ptr = m.Counter(n.name)
	}
}

// invalidate drops every kept result and makes runs in flight store
// nothing. Every mutation calls it when it ends.
func (c *resultCache) invalidate() {
	c.mu.Lock()
	c.gen++
	c.entries = [numKeys]cacheEntry{}
	c.clean = nil
	c.mu.Unlock()
	c.m.invalidations.Inc()
}

// get returns the ids of key: a kept result whose inputs are unchanged,
// the result of a run in flight, or that of a new run of compute. The
// slice is the caller's. A failure is a response, as compute's.
func (c *resultCache) get(ctx context.Context, key cacheKey, m statusMap,
	compute func(ctx context.Context) ([]string, *pb.PkgpandaResponse)) ([]string, *pb.PkgpandaResponse) {
	if !c.enabled {
		return compute(ctx)
	}
	c.mu.Lock()
	e := c.entries[key]
	c.mu.Unlock()
	if e.fp != nil {
		if c.unchanged(e.fp) {
			c.m.hits.Inc()
			return slices.Clone(e.ids), nil
		}
		c.m.stale.Inc()
		c.log.Debug().Stringer("command", key).Msg("pkgpanda result not reused: its inputs changed on disk")
		c.mu.Lock()
		if c.entries[key].fp == e.fp {
			c.entries[key] = cacheEntry{}
		}
		c.mu.Unlock()
	}
	c.m.misses.Inc()

	c.mu.Lock()
	if f := c.flights[key]; f != nil && f.gen == c.gen {
		f.waiters++
		c.mu.Unlock()
		c.m.shared.Inc()
		return c.wait(ctx, f, m)
	}
	f := &flight{gen: c.gen, waiters: 1, done: make(chan struct{})}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	c.flights[key] = f
	c.mu.Unlock()

	stop := context.AfterFunc(ctx, func() { c.leave(f) })
	fp, fpErr := c.fingerprint(key)
	ids, fail, panicked := c.lead(f.ctx, compute)
	stop()
	f.cancel()
	why := ""
	if fail == nil { // failed runs are never kept, whatever the disk says
		if fpErr != nil {
			why = fpErr.Error()
		} else {
			why = c.untrusted(fp)
		}
	}
	if why != "" {
		c.m.untrusted.Inc()
	}

	c.mu.Lock()
	if c.flights[key] == f {
		c.flights[key] = nil
	}
	if fail == nil && why == "" && f.gen == c.gen {
		c.entries[key] = cacheEntry{fp: fp, ids: ids}
	}
	f.ids, f.fail = ids, fail
	c.mu.Unlock()
	close(f.done)
	if why != "" {
		c.log.Debug().Stringer("command", key).Str("why", why).Msg("pkgpanda result not kept: the disk cannot vouch for it")
	}
	if panicked != nil {
		panic(panicked) // the leader's own recovery answers it
	}
	return slices.Clone(ids), fail
}

// lead runs compute for a flight. A panic in it is caught so that the
// flight still ends (its waiters get a 500 instead of waiting for ever),
// and handed back for get to raise again on the leader's goroutine.
func (c *resultCache) lead(ctx context.Context, compute func(ctx context.Context) ([]string, *pb.PkgpandaResponse)) (ids []string, fail *pb.PkgpandaResponse, panicked any) {
	defer func() {
		if v := recover(); v != nil {
			ids, fail, panicked = nil, failInternal(), v
		}
	}()
	ids, fail = compute(ctx)
	return ids, fail, nil
}

// installLook is one look for an interrupted activation's leftovers in
// root (see the top of this file).
type installLook struct {
	fp  *fingerprint // root's stamp before the look; nil: not to be kept
	gen uint64
}

// installClean reports whether root is known to hold no leftovers without
// reading it: the last look found none and root's stamp is unchanged.
// Otherwise it returns the look to make, for keepInstallClean.
func (c *resultCache) installClean(root string) (bool, installLook) {
	if !c.enabled {
		return false, installLook{}
	}
	c.mu.Lock()
	fp, gen := c.clean, c.gen
	c.mu.Unlock()
	if fp != nil {
		if fp.probes[0].path == root && c.unchanged(fp) {
			return true, installLook{}
		}
		c.mu.Lock()
		if c.clean == fp {
			c.clean = nil
		}
		c.mu.Unlock()
	}
	taken := time.Now()
	s, err := c.stat(root, true)
	if err != nil {
		return false, installLook{}
	}
	return false, installLook{fp: &fingerprint{probes: []probe{{root, true}}, stamps: []fileStamp{s}, taken: taken}, gen: gen}
}

// keepInstallClean remembers that look found no leftovers, if root's
// stamp can vouch for it and no mutation ended meanwhile.
func (c *resultCache) keepInstallClean(look installLook) {
	if look.fp == nil || c.untrusted(look.fp) != "" {
		return
	}
	c.mu.Lock()
	if c.gen == look.gen {
		c.clean = look.fp
	}
	c.mu.Unlock()
}

// wait returns the result of flight f, or a cancellation when ctx ends
// first.
func (c *resultCache) wait(ctx context.Context, f *flight, m statusMap) ([]string, *pb.PkgpandaResponse) {
	select {
	case <-f.done:
		return slices.Clone(f.ids), f.fail
	case <-ctx.Done():
		c.leave(f)
		return nil, runFailure(nil, context.Canceled, m)
	}
}

// leave records that a waiter of f has gone; the last one cancels the
// run.
func (c *resultCache) leave(f *flight) {
	c.mu.Lock()
	f.waiters--
	last := f.waiters == 0
	c.mu.Unlock()
	if last {
		f.cancel()
	}
}

// probes lists the paths the fingerprint of key stats. For active it
// reads <root>/active to find each link's target.
func (c *resultCache) probes(key cacheKey) ([]probe, error) {
	if key == keyList {
		return []probe{{c.repository, true}}, nil
	}
	dir := c.root + string(filepath.Separator) + "active"
	ps := []probe{{c.root, true}, {dir, true}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	for _, ent := range ents {
		if ent.Type()&os.ModeSymlink == 0 {
			continue // its name is what the CLI reports
		}
		text, err := os.Readlink(dir + string(filepath.Separator) + ent.Name())
		if err != nil {
			return nil, fmt.Errorf("reading the link %s: %w", ent.Name(), err)
		}
		if b := filepath.Base(text); b == "." || b == ".." || b == string(filepath.Separator) || strings.HasSuffix(text, "/") {
			return nil, fmt.Errorf("the link %s points at %q, whose name is not its last element", ent.Name(), text)
		}
		target := text
		if !filepath.IsAbs(text) {
			// Not filepath.Join: the kernel resolves ".." after
			// following links, Join would clean it away first.
			target = dir + string(filepath.Separator) + text
		}
		ps = append(ps, probe{target, false})
	}
	return ps, nil
}

// fingerprint takes the stamps of key's inputs.
func (c *resultCache) fingerprint(key cacheKey) (*fingerprint, error) {
	taken := time.Now()
	ps, err := c.probes(key)
	if err != nil {
		return nil, err
	}
	fp := &fingerprint{probes: ps, stamps: make([]fileStamp, len(ps)), taken: taken}
	for i, pr := range ps {
		if fp.stamps[i], err = c.stat(pr.path, pr.follow); err != nil {
			return nil, fmt.Errorf("fingerprinting the inputs of pkgpanda %s: %w", key, err)
		}
	}
	return fp, nil
}

// untrusted says why fp may miss a later change (empty: it cannot).
func (c *resultCache) untrusted(fp *fingerprint) string {
	limit := fp.taken.UnixNano()
	seen := map[uint64]bool{}
	for i, s := range fp.stamps {
		if !s.exists {
			continue
		}
		if s.link {
			return fp.probes[i].path + " is a symbolic link to a symbolic link"
		}
		g := fineGranularity
		if s.mtime%int64(time.Second) == 0 && s.ctime%int64(time.Second) == 0 {
			g = coarseGranularity
		}
		if s.mtime > limit-int64(g) || s.ctime > limit-int64(g) {
			return fp.probes[i].path + " changed within the timestamp granularity"
		}
		if !seen[s.dev] {
			seen[s.dev] = true
			t, err := c.fsType(fp.probes[i].path)
			if err != nil {
				return "statfs " + fp.probes[i].path + ": " + err.Error()
			}
			if !trustedFilesystem(t) {
				return fmt.Sprintf("%s is on a filesystem (type %#x) not known to keep timestamps", fp.probes[i].path, t)
			}
		}
	}
	return ""
}

// unchanged reports whether fp still describes the inputs.
func (c *resultCache) unchanged(fp *fingerprint) bool {
	now := time.Now()
	// A wall clock stepped back lets new stamps equal old ones.
	if wall, mono := now.Round(0).Sub(fp.taken.Round(0)), now.Sub(fp.taken); wall < mono-fineGranularity {
		return false
	}
	for i, pr := range fp.probes {
		s, err := c.stat(pr.path, pr.follow)
		if err != nil || s != fp.stamps[i] {
			return false
		}
	}
	return true
}

// trustedFilesystem reports whether magic (statfs f_type) is a local
// filesystem that updates directory timestamps on every entry change, at
// once: ext2/3/4, xfs, btrfs, tmpfs, overlayfs, zfs, f2fs.
func trustedFilesystem(magic uint32) bool {
	switch magic {
	case 0xEF53, 0x58465342, 0x9123683E, 0x01021994, 0x794C7630, 0x2FC12FC1, 0xF2F52010:
		return true
	}
	return false
}
