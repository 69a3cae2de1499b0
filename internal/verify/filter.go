package verify

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// The filter of known secrets lets a well-formed secret that no token has
// answer NOT_FOUND without a storage read, so that a flood of made-up but
// well-formed secrets, from as many addresses as an attacker has, costs
// HMACs and not database reads.
//
// It is a Bloom filter written here: none of tokend's dependencies has one,
// and the one needed is small. Its bit positions are taken straight from
// the digest, which is an HMAC-SHA256 under the pepper: uniform, and
// unpredictable to anyone without the pepper, so nobody can craft secrets
// that fill or collide in it, and no second hash is needed. Bits are set
// with an atomic OR and read with atomic loads, so lookups and adds run at
// once without a lock. A binary fuse or xor filter would be smaller, but
// takes no add after it is built, and tokens are created all the time.
//
// A filter never forgets: every secret TokenBySecret can find is added to
// it (current and retired, whatever the token's status, decoys included),
// so it never rules out a secret storage would find. It rules out only
// while it is complete: from its first build on, while no change told by
// TokenChanged waits to be read, and while the engine is in sync (changes
// made elsewhere while out of sync may have gone untold, so after Resync
// it is built again before it rules anything out). Deleted tokens leave
// their bits; a rebuild every Options.FilterRebuild drops them.
//
// A secret created through another instance reaches this one's filter when
// its notification does, a few milliseconds after the commit; a client that
// is handed the secret by one instance and presents it at once to another
// could be faster. So a secret the filter rules out is still read from
// storage while reads of such secrets stay within a small budget
// (Options.FilterConfirm a second, five times as many in a burst): without a flood the
// engine answers exactly as without a filter, and a flood, from however
// many addresses, costs at most that budget in reads.
//
// A decoy's secret is in the filter, so its use still reads storage and
// raises token.decoy_used, while an unknown secret reads nothing: the two
// now differ in cost. That is accepted: whoever uses a decoy has raised the
// alarm already.

// Filter sizing. At build the filter has filterBitsAtBuild bits per secret
// (2 bytes); with filterK bits set per secret its false-positive rate is
// then 0.07 %, and it reaches 1 % at 9.6 bits per secret: a rebuild is
// asked for once adds bring it to filterBitsAtLimit (0.82 %).
const (
	filterK           = 7
	filterBitsAtBuild = 16
	filterBitsAtLimit = 10
	// filterMinBits keeps a small store's filter (8 KiB) from being
	// rebuilt after every few creates.
	filterMinBits = 1 << 16
	// filterMaxBits: positions are 32-bit fractions of the size.
	filterMaxBits = 1 << 32
	// filterBatch bounds the tokens read at once for TokenChanged.
	filterBatch = 500
)

// DefaultFilterConfirm is how many secrets the filter rules out may still
// be read from storage a second (and in a burst), see above.
const DefaultFilterConfirm = 20

// confirmBudget lets rate reads a second through, burst at once, without a
// lock: it keeps the instant the budget is next whole again (GCRA). A
// refusal is one atomic load.
type confirmBudget struct {
	interval int64 // ns between two reads; 0: no reads at all
	burst    int64 // ns of reads that may be taken at once
	tat      atomic.Int64
}

func (c *confirmBudget) init(rate int) {
	if rate > 0 {
		c.interval = int64(time.Second) / int64(rate)
		c.burst = c.interval * int64(rate) * filterConfirmBurst
	}
}

// filterConfirmBurst: a burst takes up to this many seconds of the budget,
// for a new token verified by many clients at once before its notice came.
const filterConfirmBurst = 5

// take reports whether one more read is within the budget at now.
func (c *confirmBudget) take(now int64) bool {
	if c.interval == 0 {
		return false
	}
	for {
		tat := c.tat.Load()
		next := max(tat, now) + c.interval
		if next-now > c.burst {
			return false
		}
		if c.tat.CompareAndSwap(tat, next) {
			return true
		}
	}
}

// DefaultFilterRebuild is how often the filter of known secrets is built
// again from storage, to drop the secrets of deleted tokens.
const DefaultFilterRebuild = time.Hour

// bloom is a fixed-size Bloom filter of digests, safe for concurrent use.
type bloom struct {
	words []atomic.Uint64
	bits  uint64
	// entries counts the adds that set a bit (an add of a digest already
	// there sets none); limit is when a rebuild is asked for.
	entries atomic.Int64
	limit   int64
}

// newBloom sizes a filter for n digests.
func newBloom(n int) *bloom {
	bits := min(max(uint64(max(n, 0))*filterBitsAtBuild, filterMinBits), filterMaxBits)
	bits = (bits + 63) &^ 63
	return &bloom{words: make([]atomic.Uint64, bits/64), bits: bits, limit: int64(bits / filterBitsAtLimit)}
}

// pos answers the i-th bit of d: the digest's i-th 32-bit word taken as a
// fraction of the size (d is uniform already; see above).
func (b *bloom) pos(d *[32]byte, i int) uint64 {
	return uint64(binary.LittleEndian.Uint32(d[4*i:])) * b.bits >> 32
}

// has reports whether d may have been added: false means it never was.
func (b *bloom) has(d *[32]byte) bool {
	for i := range filterK {
		p := b.pos(d, i)
		if b.words[p>>6].Load()&(1<<(p&63)) == 0 {
			return false
		}
	}
	return true
}

// add adds d, and reports whether the filter is past its limit.
func (b *bloom) add(d *[32]byte) (full bool) {
	set := false
	for i := range filterK {
		p := b.pos(d, i)
		m := uint64(1) << (p & 63)
		if b.words[p>>6].Or(m)&m == 0 {
			set = true
		}
	}
	n := b.entries.Load()
	if set {
		n = b.entries.Add(1)
	}
	return n > b.limit
}

// bytes answers the filter's memory.
func (b *bloom) bytes() int { return len(b.words) * 8 }

// secretFilter is the engine's filter of known secrets and what keeps it
// complete.
type secretFilter struct {
	on bool
	// cur is the filter adds go to and lookups ask; nil before the first
	// build, and from OutOfSync until the build that follows Resync.
	cur atomic.Pointer[bloom]
	// unread counts the tokens told changed (TokenChanged) whose secrets
	// are not in the filter yet; while it is not 0 nothing is ruled out.
	unread atomic.Int64

	mu sync.Mutex
	// ids are the tokens to read, for readChanged.
	ids map[string]struct{}
	// building is set while a rebuild scans storage; the digests added
	// meanwhile are kept in pending and added to the new filter before it
	// replaces cur, since the scan may have passed them.
	building bool
	pending  [][32]byte
	// epoch grows with every OutOfSync and Resync: a build that began
	// before one is not installed.
	epoch uint64

	confirm  confirmBudget
	buildMu  sync.Mutex // one build at a time
	rebuilds atomic.Uint64
	readWake chan struct{}
	rebuild  chan struct{}
	every    time.Duration
}

func (f *secretFilter) init(on bool, every time.Duration, confirm int) {
	f.on = on
	f.confirm.init(confirm)
	f.ids = make(map[string]struct{})
	f.readWake = make(chan struct{}, 1)
	f.rebuild = make(chan struct{}, 1)
	f.every = every
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// ruledOut reports whether no token has the secret of digest d, as far as
// the filter can tell without doubt, and the budget of reads of such
// secrets is spent (see above).
func (e *Engine) ruledOut(d *[32]byte, now int64) bool {
	b := e.filter.cur.Load()
	return b != nil && e.filter.unread.Load() == 0 && e.outOfSync.Load() == 0 && !b.has(d) && !e.filter.confirm.take(now)
}

// SecretAdded adds the hash of a secret just written to the filter (see
// tokend.SecretKeeper); the caller hands the secret out after it returns.
func (e *Engine) SecretAdded(hash []byte) {
	if len(hash) == 32 {
		e.filter.add((*[32]byte)(hash))
	}
}

func (f *secretFilter) add(d *[32]byte) {
	if !f.on {
		return
	}
	f.mu.Lock()
	if f.building {
		f.pending = append(f.pending, *d)
	}
	b := f.cur.Load()
	f.mu.Unlock()
	// A build that swaps cur after the load above has d from pending.
	if b != nil && b.add(d) {
		wake(f.rebuild)
	}
}

// changed queues a token whose secrets are to be read and added.
func (f *secretFilter) changed(id string) {
	if !f.on {
		return
	}
	f.mu.Lock()
	if _, ok := f.ids[id]; !ok {
		f.ids[id] = struct{}{}
		f.unread.Add(1)
	}
	f.mu.Unlock()
	wake(f.readWake)
}

// outOfSync stops the filter from ruling out until it is built again
// after Resync.
func (f *secretFilter) outOfSync(resync bool) {
	if !f.on {
		return
	}
	f.mu.Lock()
	f.epoch++
	f.cur.Store(nil)
	f.mu.Unlock()
	if resync {
		wake(f.rebuild)
	}
}

// takeIDs answers up to filterBatch of the tokens to read.
func (f *secretFilter) takeIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.ids {
		if len(ids) == filterBatch {
			break
		}
		ids = append(ids, id)
		delete(f.ids, id)
	}
	return ids
}

// putBack queues ids again after a failed read; they are counted in
// unread still.
func (f *secretFilter) putBack(ids []string) {
	f.mu.Lock()
	for _, id := range ids {
		if _, ok := f.ids[id]; ok {
			f.unread.Add(-1) // told again meanwhile, and counted then
		}
		f.ids[id] = struct{}{}
	}
	f.mu.Unlock()
}

// runFilter keeps the filter complete until ctx is done: it builds it
// first, again on Resync, when it is full and every Options.FilterRebuild,
// and reads the secrets of the tokens told changed.
func (e *Engine) runFilter(ctx context.Context) {
	if !e.filter.on {
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { e.readChangedLoop(ctx) })
	defer wg.Wait()
	every := time.NewTicker(e.filter.every)
	defer every.Stop()
	retry := time.Second
	for {
		if err := e.RebuildFilter(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Error("verify: building the filter of known secrets failed; every unknown secret is read from storage until it is built", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
			retry = min(2*retry, time.Minute)
			continue
		}
		retry = time.Second
		select {
		case <-ctx.Done():
			return
		case <-every.C:
		case <-e.filter.rebuild:
		}
	}
}

// RebuildFilter builds the filter of known secrets from storage and puts
// it in place. Run does it as needed; tests force one.
func (e *Engine) RebuildFilter(ctx context.Context) error {
	f := &e.filter
	if !f.on {
		return nil
	}
	f.buildMu.Lock()
	defer f.buildMu.Unlock()
	f.mu.Lock()
	f.building, f.pending = true, nil
	epoch := f.epoch
	f.mu.Unlock()
	b, err := e.scanSecrets(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	pending := f.pending
	f.building, f.pending = false, nil
	if err != nil {
		return err
	}
	for i := range pending {
		b.add(&pending[i])
	}
	if f.epoch != epoch {
		// Out of sync, or resynced, since the scan began: it may have
		// missed a change. Resync asks for another build.
		return nil
	}
	f.cur.Store(b)
	f.rebuilds.Add(1)
	return nil
}

// scanSecrets reads every secret into a new filter.
func (e *Engine) scanSecrets(ctx context.Context) (*bloom, error) {
	n, err := e.store.CountSecrets(ctx)
	if err != nil {
		return nil, err
	}
	b := newBloom(n)
	err = e.store.SecretHashes(ctx, nil, func(h []byte) {
		if len(h) == 32 {
			b.add((*[32]byte)(h))
		}
	})
	return b, err
}

// readChangedLoop reads the secrets of the tokens told changed, in
// batches, off the request path.
func (e *Engine) readChangedLoop(ctx context.Context) {
	f := &e.filter
	retry := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.readWake:
		}
		for {
			ids := f.takeIDs()
			if len(ids) == 0 {
				break
			}
			if err := e.readChanged(ctx, ids); err != nil {
				f.putBack(ids)
				if ctx.Err() != nil {
					return
				}
				e.log.Error("verify: reading the secrets of changed tokens failed; unknown secrets are read from storage until they are read", "err", err, "tokens", len(ids))
				select {
				case <-ctx.Done():
					return
				case <-time.After(retry):
				}
				retry = min(2*retry, 10*time.Second)
				continue
			}
			retry = 100 * time.Millisecond
			f.unread.Add(-int64(len(ids)))
		}
	}
}

func (e *Engine) readChanged(ctx context.Context, ids []string) error {
	ctx, cancel := context.WithTimeout(ctx, e.readTimeout)
	defer cancel()
	var hs [][32]byte
	err := e.store.SecretHashes(ctx, ids, func(h []byte) {
		if len(h) == 32 {
			hs = append(hs, [32]byte(h))
		}
	})
	if err != nil {
		return err
	}
	for i := range hs {
		e.filter.add(&hs[i])
	}
	return nil
}

// FilterStats answers the entries and bytes of the filter of known
// secrets (0 while there is none) and how many times it was built.
func (e *Engine) FilterStats() (entries int64, bytes int, rebuilds uint64) {
	if b := e.filter.cur.Load(); b != nil {
		entries, bytes = b.entries.Load(), b.bytes()
	}
	return entries, bytes, e.filter.rebuilds.Load()
}

// FilterReady reports whether the filter rules secrets out now.
func (e *Engine) FilterReady() bool {
	return e.filter.cur.Load() != nil && e.filter.unread.Load() == 0 && e.outOfSync.Load() == 0
}

// StorageReads answers how many times the engine read a token by its
// secret from storage.
func (e *Engine) StorageReads() uint64 { return e.stats.reads.Load() }
